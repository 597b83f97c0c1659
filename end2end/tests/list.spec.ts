import { expect, test } from '@playwright/test';
import { rowOf, SAGA_TYPES } from './helpers';

/**
 * A saga id as the app writes it into a path (`percent_encode` of
 * sagascope_model: everything but A–Z a–z 0–9 - _ ~); some simulated ids
 * are hostile markup (`chat-</title><h1 …>`).
 */
function pathSegment(id: string): string {
  return encodeURIComponent(id).replace(/[!'()*.]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

const STATUSES = [
  'running',
  'completed',
  'failed',
  'compensating',
  'compensated',
  'compensation_failed',
  'timed_out',
];

test('the saga list shows sagas of every type with status badges', async ({ page }) => {
  const rows = page.locator('[data-test=saga-row]');

  // Ingest starts a few seconds after the demo (consumer-group join): reload
  // until the server-rendered list holds every saga type.
  await expect(async () => {
    await page.goto('/sagas');
    await expect(page.locator('[data-test=saga-list]')).toBeVisible();
    for (const type of SAGA_TYPES) {
      await expect(page.locator(`[data-test=saga-row][data-saga-type=${type}]`).first()).toBeAttached({ timeout: 1_000 });
    }
  }).toPass({ timeout: 40_000, intervals: [1_000, 2_000] });

  await expect(page.locator('[data-test=empty-state]')).toHaveCount(0);
  const count = await rows.count();
  expect(count).toBeGreaterThan(3);

  // Every row: a known type and status, a link to its detail page, and a
  // status badge whose status and visible label match the row's (the list's
  // badge has no data-test of its own: found by its data-status). Rows move
  // as live sagas arrive, so each is found again by its saga id.
  const shown = await rows.evaluateAll((els) =>
    els.map((e) => ({
      id: e.getAttribute('data-saga-id') ?? '',
      type: e.getAttribute('data-saga-type') ?? '',
      status: e.getAttribute('data-status') ?? '',
    })),
  );
  for (const { id, type, status } of shown.slice(0, 15)) {
    expect(id).toBeTruthy();
    expect(SAGA_TYPES as readonly string[]).toContain(type);
    expect(STATUSES).toContain(status);
    const row = rowOf(page, id);
    await expect(row.locator('[data-test=saga-link]')).toHaveAttribute('href', `/sagas/${pathSegment(id)}`);
    await expect(row.locator('[data-status]')).toHaveCount(1);
    // Read row and badge together: a running saga may finish meanwhile.
    await expect(async () => {
      const seen = await row.evaluate((r) => {
        const badge = r.querySelector('[data-status]');
        return { row: r.getAttribute('data-status'), badge: badge?.getAttribute('data-status'), label: badge?.textContent ?? '' };
      });
      expect(seen.badge).toBe(seen.row);
      expect(seen.label).toMatch(new RegExp(seen.row!.replace('_', ' '), 'i'));
    }).toPass({ timeout: 5_000 });
  }
});
