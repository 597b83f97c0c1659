import { expect, test } from '@playwright/test';
import { listSagas, pollFor, rowOf, waitForIngest, waitForLive } from './helpers';

test.beforeEach(async ({ request }) => {
  await waitForIngest(request);
});

test('the status filter narrows the list and lives in the URL', async ({ page }) => {
  await page.goto('/sagas');
  await waitForLive(page); // hydrated: the select submits its form on change

  const form = page.locator('[data-test=filter-form]');
  await form.locator('[data-test=filter-status]').selectOption('compensated');
  // Changing the select submits; "Apply" is the no-JavaScript way and a
  // harmless repeat otherwise.
  await page.waitForURL(/[?&]status=compensated(&|$)/, { timeout: 5_000 }).catch(async () => {
    await form.locator('[data-test=filter-apply]').click();
  });
  await expect(page).toHaveURL(/\/sagas\?(.*&)?status=compensated(&|$)/);

  const rows = page.locator('[data-test=saga-row]');
  await expect(rows.first()).toBeVisible();
  await expect(page.locator('[data-test=filter-status]')).toHaveValue('compensated');
  const statuses = await rows.evaluateAll((els) => els.map((e) => e.getAttribute('data-status')));
  expect(statuses.length).toBeGreaterThan(0);
  expect(new Set(statuses)).toEqual(new Set(['compensated']));

  // The store agrees: every compensated saga of the first page is listed.
  const expected = await listSagas(page.request, { status: 'compensated', limit: 50 });
  for (const saga of expected.slice(0, 5)) {
    await expect(rowOf(page, saga.saga_id)).toHaveAttribute('data-status', 'compensated');
  }

  // A shared URL reproduces the same view.
  await page.goto('/sagas?status=compensated');
  await expect(page.locator('[data-test=filter-status]')).toHaveValue('compensated');
  const again = await rows.evaluateAll((els) => els.map((e) => e.getAttribute('data-status')));
  expect(new Set(again)).toEqual(new Set(['compensated']));
});

test('searching a trace id finds its saga', async ({ page, request }) => {
  // A finished saga: its row no longer changes while the test runs.
  const saga = await pollFor('a completed saga with a trace id', async () => {
    const items = await listSagas(request, { status: 'completed', limit: 20 });
    return items.find((s) => s.trace_ids.length > 0);
  });
  const traceId = saga.trace_ids[0];

  await page.goto('/sagas');
  await waitForLive(page);
  const search = page.locator('[data-test=search-input]');
  await search.fill(traceId);
  await search.press('Enter');

  // The search jumps straight to the saga, or to the trace when several
  // sagas share the trace id (server/src/http/search.rs), or filters the list.
  const tracePath = `/traces/${traceId}`;
  await page.waitForURL(
    (url) =>
      url.pathname === `/sagas/${saga.saga_id}` || url.pathname === tracePath || url.searchParams.get('q') === traceId,
  );
  const landed = new URL(page.url()).pathname;
  const jumped = landed === `/sagas/${saga.saga_id}`;
  test.info().annotations.push({
    type: 'search',
    description: jumped ? 'jumped to the saga' : landed === tracePath ? 'jumped to the shared trace' : 'filtered the list',
  });
  if (jumped) {
    await expect(page.locator('[data-test=saga-header]')).toContainText(saga.saga_id);
  } else if (landed === tracePath) {
    await expect(page.locator('[data-test=trace-id]')).toHaveText(traceId);
    await expect(page.locator(`a[href="/sagas/${saga.saga_id}"]`).first()).toBeVisible();
  } else {
    const rows = page.locator('[data-test=saga-row]');
    await expect(rowOf(page, saga.saga_id)).toBeVisible();
    await expect(rows).toHaveCount(1);
    await expect(rowOf(page, saga.saga_id).locator('[data-test=trace-link]')).toHaveAttribute(
      'href',
      `/traces/${traceId}`,
    );
  }
});
