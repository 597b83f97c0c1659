import { expect, test } from '@playwright/test';
import { ingestErrors, listSagas, pollFor, sagaDetail, waitForIngest, type IngestError } from './helpers';

// Issue 3 against the running demo: every wire format lands on one
// timeline, a product-events stream is not shown as a saga, and the bad
// messages the simulator injects on purpose are listed with coordinates.

test('a choreographed order saga from Debezium CDC and CloudEvents reads as one timeline', async ({ page, request }) => {
  await waitForIngest(request);
  const saga = await pollFor('a compensated order_choreography saga', async () => {
    const items = await listSagas(request, { saga_type: 'order_choreography', status: 'compensated', limit: 1 });
    return items[0];
  });
  const detail = await sagaDetail(request, saga.saga_id);
  const topics = new Set(detail.events.map((e) => e.topic));
  expect(topics).toContain('dbserver1.shop.outbox');
  expect(topics).toContain('payments.events');
  expect(detail.events.map((e) => e.event_type)).toContain('com.shop.payment.PaymentFailed');
  // One trace, and the trace id is the saga id (no saga id on the wire).
  expect(detail.trace_ids).toEqual([saga.saga_id]);

  await page.goto(`/sagas/${saga.saga_id}`);
  await expect(page.locator('[data-test=saga-status]')).toHaveAttribute('data-status', 'compensated');
  const rows = page.locator('[data-test=timeline-row]');
  await expect(rows).toHaveCount(detail.events.length);
  await expect(rows.first()).toContainText('OrderCreated');
  await expect(rows.first()).toContainText('dbserver1.shop.outbox');
  const failed = rows.filter({ hasText: 'PaymentFailed' });
  await expect(failed).toContainText('payments.events');
  await expect(failed.locator('[data-test=event-error]')).toHaveText(/card declined|insufficient funds/);
  await expect(rows.last()).toContainText('StockReleased');
});

test('product events are kept for traces but never listed as sagas', async ({ page, request }) => {
  await waitForIngest(request);
  const sagas = await listSagas(request, { limit: 500 });
  expect(sagas.length).toBeGreaterThan(10);
  expect(sagas.filter((s) => /product/i.test(s.saga_type))).toEqual([]);
  await page.goto('/sagas');
  const options = await page.locator('select[name=saga_type] option').allTextContents();
  expect(options.join(' ')).toContain('order_choreography');
  expect(options.join(' ')).not.toMatch(/product/i);
});

test('the ingest-errors page lists every kind of bad message the simulator injects', async ({ page, request }) => {
  const expected = [
    /not valid JSON: EOF/,
    /not valid UTF-8/,
    /unknown status `PAUSED`/,
    /recursion limit exceeded/,
    /not an object \(found array\)/,
    /missing or empty field `ce_type`/,
    /unrecognised format/,
    /duplicate event id .* with a different body/,
  ];
  let errors: IngestError[] = [];
  await pollFor('one ingest error of every injected kind', async () => {
    errors = await ingestErrors(request);
    return expected.every((re) => errors.some((e) => re.test(e.reason))) ? true : undefined;
  });
  await page.goto('/ingest');
  const rows = page.locator('[data-test=ingest-error-row]');
  await expect(rows.first()).toBeVisible();
  for (const re of expected) {
    const stored = errors.find((e) => re.test(e.reason))!;
    const row = page.locator(
      `[data-test=ingest-error-row][data-topic="${stored.topic}"][data-partition="${stored.partition}"][data-offset="${stored.offset}"]`,
    );
    await expect(row, `${re} at ${stored.topic}[${stored.partition}]@${stored.offset}`).toBeVisible();
    await expect(row).toContainText(stored.topic);
  }
});
