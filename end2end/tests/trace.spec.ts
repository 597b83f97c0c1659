import { expect, test } from '@playwright/test';
import { listSagas, pollFor, sagaDetail, traceView, waitForIngest } from './helpers';

test.beforeEach(async ({ request }) => {
  await waitForIngest(request);
});

test('the trace link leads to every event of the trace', async ({ page, request }) => {
  // A finished saga, so its events do not change under the test.
  const saga = await pollFor('a completed order saga with a trace id', async () => {
    const items = await listSagas(request, { saga_type: 'order', status: 'completed', limit: 20 });
    const found = items.find((s) => s.trace_ids.length === 1);
    return found && sagaDetail(request, found.saga_id);
  });
  const traceId = saga.trace_ids[0];

  await page.goto(`/sagas/${saga.saga_id}`);
  await expect(page.locator('[data-test=timeline] [data-test=timeline-row]')).toHaveCount(saga.events.length);
  const link = page.locator('[data-test=saga-header] [data-test=trace-link]');
  await expect(link).toHaveCount(1);
  await link.click();
  await expect(page).toHaveURL(new RegExp(`/traces/${traceId}$`));

  const trace = await traceView(request, traceId);
  const rows = page.locator('[data-test=trace-events] [data-test=timeline-row]');
  await expect(page.locator('[data-test=trace-events]')).toBeVisible();
  await expect(rows).toHaveCount(trace.events.length);
  // Every event of the saga is on the trace page; in the demo a trace is
  // one saga, so the counts match exactly.
  const shown = await rows.evaluateAll((els) => els.map((e) => e.getAttribute('data-event-id')));
  for (const event of saga.events) expect(shown).toContain(event.event_id);
  if (trace.sagas.length === 1) expect(shown).toHaveLength(saga.events.length);
  // The trace's sagas are listed, linking back.
  await expect(page.locator(`[data-test=saga-row][data-saga-id="${saga.saga_id}"] [data-test=saga-link]`)).toHaveAttribute(
    'href',
    `/sagas/${saga.saga_id}`,
  );
});
