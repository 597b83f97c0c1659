import { expect, test } from '@playwright/test';
import { failOnDialog, listSagas, pollFor, sagaDetail, waitForLive, type SagaDetail, type SagaSummary, type TimelineEvent } from './helpers';

const XSS = "<script>alert('xss')</script>";

function content(event: TimelineEvent): string | undefined {
  const payload = event.payload as { context_data?: { content?: unknown } } | null;
  const text = payload?.context_data?.content;
  return typeof text === 'string' ? text : undefined;
}

test('message content with markup is shown as text, never run', async ({ page, request }) => {
  test.setTimeout(120_000);
  const dialogs = failOnDialog(page);

  // About one chat saga in six carries the script; new ones keep coming.
  const checked = new Set<string>();
  const { saga, event } = await pollFor<{ saga: SagaDetail; event: TimelineEvent }>(
    'a chat_message saga whose payload contains <script>',
    async () => {
      const sagas = await listSagas(request, { saga_type: 'chat_message', limit: 100 });
      for (const summary of sagas) {
        // Finished sagas only: their timeline no longer changes.
        if (checked.has(summary.saga_id) || summary.status === 'running') continue;
        checked.add(summary.saga_id);
        const detail = await sagaDetail(request, summary.saga_id);
        const hit = detail.events.find((e) => content(e)?.includes('<script>'));
        if (hit) return { saga: detail, event: hit };
      }
      return undefined;
    },
    { timeout: 60_000, interval: 1_000 },
  );
  expect(content(event)).toContain(XSS);

  // The server's HTML carries the text escaped, nowhere as a live tag
  // (neither in the markup nor in the hydration data).
  const html = await (await request.get(`/sagas/${saga.saga_id}`)).text();
  expect(html).not.toContain(XSS);

  await page.goto(`/sagas/${saga.saga_id}`);
  await waitForLive(page); // hydrated too: the client side had its chance

  const row = page.locator(`[data-test=timeline] [data-test=timeline-row][data-event-id="${event.event_id}"]`);
  await expect(row).toHaveCount(1);
  const payload = row.locator('[data-test=event-payload]');
  await expect(payload).toBeHidden();
  await row.locator('summary').click();
  await expect(payload).toBeVisible();

  const text = await payload.textContent();
  expect(text).toContain(XSS);
  // The pretty JSON is the payload itself, parseable back.
  expect(JSON.parse(text!)).toEqual(event.payload);
  await expect(page.locator('[data-test=event-payload] script')).toHaveCount(0);
  await expect(page.locator('[data-test=timeline] script')).toHaveCount(0);
  // Headers are text as well.
  await expect(row.locator('[data-test=event-headers]')).toBeVisible();

  // Give a would-be script a moment to run, then check nothing did.
  await page.evaluate(() => new Promise((resolve) => requestAnimationFrame(() => setTimeout(resolve, 300))));
  expect(dialogs, 'no dialog was opened').toEqual([]);
});

test('a saga id with markup from Kafka is text in the title and on the page', async ({ page, request }) => {
  test.setTimeout(120_000);
  const dialogs = failOnDialog(page);
  // About one chat saga in six has an id that closes the <title> and opens
  // an element (crates/simulator/src/saga_plans/chat_message.rs).
  const saga = await pollFor<SagaSummary>(
    'a chat_message saga whose id closes the <title>',
    async () => {
      const sagas = await listSagas(request, { saga_type: 'chat_message', limit: 200 });
      return sagas.find((s) => s.saga_id.includes('</title>'));
    },
    { timeout: 60_000, interval: 1_000 },
  );

  // The server's HTML: the id escaped in <title>, no injected element.
  const path = `/sagas/${encodeURIComponent(saga.saga_id)}`;
  const html = await (await request.get(path)).text();
  expect(html).not.toContain('<h1 id=injected>');
  expect(html).toContain('&lt;/title&gt;&lt;h1 id=injected&gt;');

  await page.goto(path);
  await waitForLive(page);
  await expect(page).toHaveTitle(`Saga ${saga.saga_id} · sagascope`);
  await expect(page.locator('#injected')).toHaveCount(0);
  await expect(page.locator('[data-test=saga-id]').first()).toContainText('</title>');
  expect(dialogs, 'no dialog was opened').toEqual([]);
});
