import { expect, test, type Page } from '@playwright/test';
import { becomesTrue, listSagas, sagaDetail, sagaIdsShown, waitForIngest, waitForLive, type SagaSummary } from './helpers';

test.beforeEach(async ({ request }) => {
  await waitForIngest(request);
});

/** Marks the document so a test can prove the page never reloaded. */
async function markDocument(page: Page) {
  await page.evaluate(() => {
    (window as unknown as { __e2eMark: number }).__e2eMark = 42;
  });
  return async () => {
    const mark = await page.evaluate(() => (window as unknown as { __e2eMark?: number }).__e2eMark);
    expect(mark, 'the page was not reloaded').toBe(42);
  };
}

test('new sagas appear in the list without a reload', async ({ page }) => {
  let documents = 0;
  page.on('framenavigated', (frame) => {
    if (frame === page.mainFrame()) documents++;
  });
  await page.goto('/sagas');
  await waitForLive(page);
  const stillSameDocument = await markDocument(page);
  const navigationsBefore = documents;

  const initial = new Set(await sagaIdsShown(page));
  expect(initial.size).toBeGreaterThan(0);

  await expect
    .poll(async () => (await sagaIdsShown(page)).filter((id) => !initial.has(id)), {
      message: 'a saga that was not shown at first appears live',
      timeout: 30_000,
      intervals: [250, 500, 1_000],
    })
    .not.toEqual([]);

  const fresh = (await sagaIdsShown(page)).filter((id) => !initial.has(id));
  // The new row is a real saga the store knows.
  const known = await listSagas(page.request, { q: fresh[0], limit: 5 });
  expect(known.map((s) => s.saga_id)).toContain(fresh[0]);
  await stillSameDocument();
  expect(documents).toBe(navigationsBefore);
  await expect(page.locator('[data-test=live-indicator]')).toHaveText('live');
});

test('a running saga’s timeline grows live', async ({ page, request }) => {
  test.setTimeout(120_000);
  const tried = new Set<string>();
  const outcomes: string[] = [];

  // The demo's sagas finish within seconds, so a chosen saga may be over
  // before the page is live; then another one is picked.
  for (let attempt = 0; attempt < 6; attempt++) {
    const running = (await listSagas(request, { status: 'running', limit: 20 })).filter(
      (s) => !tried.has(s.saga_id),
    );
    // The youngest first: it has the most of its life ahead.
    const saga: SagaSummary | undefined = running.sort((a, b) => b.started_at.localeCompare(a.started_at))[0];
    if (!saga) {
      outcomes.push('no running saga in the store');
      await page.waitForTimeout(500);
      continue;
    }
    tried.add(saga.saga_id);

    await page.goto(`/sagas/${saga.saga_id}`);
    const rows = page.locator('[data-test=timeline] [data-test=timeline-row]');
    const status = page.locator('[data-test=saga-status]');
    await expect(status).toBeVisible();
    await waitForLive(page);
    const stillSameDocument = await markDocument(page);

    const shownRows = await rows.count();
    const shownStatus = await status.getAttribute('data-status');
    const stored = await sagaDetail(request, saga.saga_id);
    if (shownStatus !== 'running' || stored.status !== 'running' || stored.events.length !== shownRows) {
      // It moved on between rendering and subscribing: nothing left to see live.
      outcomes.push(`${saga.saga_id}: changed before the stream was live (page ${shownStatus}/${shownRows}, store ${stored.status}/${stored.events.length})`);
      continue;
    }

    const changed = await becomesTrue(
      async () => (await rows.count()) > shownRows || (await status.getAttribute('data-status')) !== 'running',
      { timeout: 15_000 },
    );
    if (!changed) {
      const now = await sagaDetail(request, saga.saga_id);
      // The store did not move either (e.g. a saga that will time out): retry.
      expect(
        now.events.length === shownRows && now.status === 'running',
        `the store moved on (${now.status}, ${now.events.length} events) but the page stayed at ${shownRows} rows`,
      ).toBe(true);
      outcomes.push(`${saga.saga_id}: no new event within 15 s`);
      continue;
    }

    await stillSameDocument();
    // What arrived live is what the store holds.
    // The saga may still be moving: the page and one read of the store are
    // compared in the same round, until they agree.
    let ids: (string | null)[] = [];
    let stored2 = stored;
    await expect
      .poll(async () => {
        stored2 = await sagaDetail(request, saga.saga_id);
        ids = await rows.evaluateAll((els) => els.map((e) => e.getAttribute('data-event-id')));
        const shown = new Set(ids);
        return (
          ids.length === stored2.events.length &&
          stored2.events.every((e) => shown.has(e.event_id)) &&
          (await status.getAttribute('data-status')) === stored2.status
        );
      }, { timeout: 15_000 })
      .toBe(true);
    test.info().annotations.push({
      type: 'watched',
      description: `${saga.saga_id}: ${shownRows} → ${ids.length} rows, ${shownStatus} → ${stored2.status} (attempt ${attempt + 1}; ${outcomes.join('; ') || 'first try'})`,
    });
    return;
  }
  throw new Error(`no running saga could be watched live:\n${outcomes.join('\n')}`);
});
