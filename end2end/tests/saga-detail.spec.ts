import { expect, test } from '@playwright/test';
import { findPaymentCompensatedOrder, micros, rowOf } from './helpers';

test('a compensated order saga shows its failure and compensation on the timeline', async ({ page, request }) => {
  const saga = await findPaymentCompensatedOrder(request);

  // Reach it the way a user does: filter the list, click the saga's link.
  await page.goto(`/sagas?saga_type=order&status=compensated&q=${saga.saga_id}`);
  const link = rowOf(page, saga.saga_id).locator('[data-test=saga-link]');
  await expect(link).toBeVisible();
  await link.click();
  await expect(page).toHaveURL(new RegExp(`/sagas/${saga.saga_id}$`));

  const header = page.locator('[data-test=saga-header]');
  await expect(header).toBeVisible();
  await expect(header).toContainText(saga.saga_id);
  const status = header.locator('[data-test=saga-status]');
  await expect(status).toHaveAttribute('data-status', 'compensated');
  await expect(status).toContainText('Compensated');

  const timeline = page.locator('[data-test=timeline]');
  const rows = timeline.locator('[data-test=timeline-row]');
  const row = (attrs: string) => timeline.locator(`[data-test=timeline-row]${attrs}`);
  await expect(rows).toHaveCount(saga.events.length);

  await expect(row('[data-step=ReserveStock]').first()).toBeVisible();
  const failed = row('[data-phase=step_failed][data-step=AuthorizePayment]');
  await expect(failed).toHaveCount(1);
  await expect(failed.locator('[data-test=event-error]')).toContainText('card declined');
  await expect(failed).toHaveClass(/\bfailure\b/);

  const compensation = row('[data-step=ReleaseStock]:is([data-phase=step_compensated], [data-phase=compensation_started])');
  await expect(compensation.first()).toBeVisible();
  await expect(compensation.first()).toHaveClass(/\bcompensation\b/);
  // Visually distinct: compensation rows are indented against the others.
  const normalBox = await row('[data-step=ReserveStock]').first().boundingBox();
  const compensationBox = await compensation.first().boundingBox();
  expect(compensationBox!.x).toBeGreaterThan(normalBox!.x + 8);

  // Rows follow event time: map each row to its event and compare times.
  const occurred = new Map(saga.events.map((e) => [e.event_id, e]));
  const ids = await rows.evaluateAll((els) => els.map((e) => e.getAttribute('data-event-id') ?? ''));
  const times = ids.map((id) => {
    const event = occurred.get(id);
    expect(event, `timeline row ${id} is an event of the saga`).toBeTruthy();
    return micros(event!.occurred_at);
  });
  for (let i = 1; i < times.length; i++) {
    expect(times[i], `row ${i} (${ids[i]}) is not earlier than row ${i - 1}`).toBeGreaterThanOrEqual(times[i - 1]);
  }
  const phases = await rows.evaluateAll((els) =>
    els.map((e) => `${e.getAttribute('data-phase')}:${e.getAttribute('data-step') ?? ''}`),
  );
  const at = (key: string) => phases.indexOf(key);
  expect(at('step_succeeded:ReserveStock')).toBeGreaterThanOrEqual(0);
  expect(at('step_succeeded:ReserveStock')).toBeLessThan(at('step_failed:AuthorizePayment'));
  const released = Math.max(at('step_compensated:ReleaseStock'), at('compensation_started:ReleaseStock'));
  expect(at('step_failed:AuthorizePayment')).toBeLessThan(released);
  expect(phases[phases.length - 1]).toBe('saga_compensated:');
});
