import { expect, test } from '@playwright/test';
import { sagaDetail, waitForIngest } from './helpers';

test.use({ javaScriptEnabled: false });

test.beforeEach(async ({ request }) => {
  await waitForIngest(request);
});

test('without JavaScript the list, filters and a timeline are readable', async ({ page }) => {
  await page.goto('/sagas');
  const rows = page.locator('[data-test=saga-row]');
  await expect(rows.first()).toBeVisible();
  expect(await rows.count()).toBeGreaterThan(3);
  // A snapshot: the indicator says so instead of pretending to be live.
  await expect(page.locator('[data-test=live-indicator]')).not.toHaveText('live');

  // The filter form is a plain GET form.
  const form = page.locator('[data-test=filter-form]');
  await form.locator('[data-test=filter-status]').selectOption('completed');
  await form.locator('[data-test=filter-apply]').click();
  await expect(page).toHaveURL(/[?&]status=completed(&|$)/);
  await expect(rows.first()).toBeVisible();
  const statuses = await rows.evaluateAll((els) => els.map((e) => e.getAttribute('data-status')));
  expect(new Set(statuses)).toEqual(new Set(['completed']));

  // A saga's detail page, rendered on the server, with its whole timeline.
  const first = rows.first();
  const sagaId = await first.getAttribute('data-saga-id');
  const stored = await sagaDetail(page.request, sagaId!);
  await first.locator('[data-test=saga-link]').click();
  await expect(page).toHaveURL(new RegExp(`/sagas/${sagaId}$`));
  await expect(page.locator('[data-test=saga-header]')).toContainText(sagaId!);
  await expect(page.locator('[data-test=saga-status]')).toHaveAttribute('data-status', 'completed');
  const timeline = page.locator('[data-test=timeline] [data-test=timeline-row]');
  await expect(timeline.first()).toBeVisible();
  await expect(timeline).toHaveCount(stored.events.length);
  await expect(timeline.first()).toHaveAttribute('data-phase', 'saga_started');
  await expect(timeline.last()).toHaveAttribute('data-phase', 'saga_completed');

  // Rows expand without JavaScript (<details>).
  const payload = timeline.first().locator('[data-test=event-payload]');
  await expect(payload).toBeHidden();
  await timeline.first().locator('summary').click();
  await expect(payload).toBeVisible();
});
