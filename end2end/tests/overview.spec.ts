import { expect, test, type Page } from '@playwright/test';
import { SAGA_TYPES, becomesTrue, pollFor, waitForIngest, waitForLive } from './helpers';

test.beforeEach(async ({ request }) => {
  await waitForIngest(request);
});

/**
 * Live updates off (the stored choice of the top bar's toggle): the
 * overview then stays the snapshot the test reads instead of refreshing
 * every few seconds under it.
 */
async function pauseLive(page: Page): Promise<void> {
  await page.addInitScript(() => window.localStorage.setItem('sagascope-live', 'paused'));
}

/** Hydrated with live updates paused. */
async function waitForPaused(page: Page): Promise<void> {
  await expect(page.locator('[data-test=live-indicator]')).toHaveAttribute('data-state', 'paused', { timeout: 20_000 });
}

/** The number a count link of the overview shows (and its `data-count`). */
async function countOf(page: Page, sagaType: string, status: string): Promise<number> {
  const link = page.locator(`[data-test="count-${sagaType}-${status}"]`);
  const [attribute, text] = await link.evaluate((a) => [a.getAttribute('data-count'), a.textContent ?? '']);
  const count = Number(attribute);
  expect(Number.isInteger(count), `count-${sagaType}-${status}`).toBeTruthy();
  expect(Number(text.replace(/,/g, ''))).toBe(count);
  return count;
}

test('the overview is the landing page: a row per saga type, cards, alerts and lag', async ({ page }) => {
  await pauseLive(page);
  // The demo's sagas reach the rollups a moment after they are listed.
  await pollFor('every demo saga type on the overview', async () => {
    await page.goto('/');
    const rows = await Promise.all(
      SAGA_TYPES.map((t) => page.locator(`[data-test="saga-type-row-${t}"]`).count()),
    );
    return rows.every((n) => n === 1) ? true : undefined;
  });
  await expect(page.locator('[data-test=nav-overview]')).toHaveAttribute('aria-current', 'page');
  await expect(page.locator('[data-test=nav-sagas]')).not.toHaveAttribute('aria-current', 'page');
  await expect(page.locator('[data-test=overview-window-1h]')).toHaveAttribute('aria-current', 'page');

  for (const sagaType of SAGA_TYPES) {
    const row = page.locator(`[data-test="saga-type-row-${sagaType}"]`);
    await expect(row).toBeVisible();
    const started = await countOf(page, sagaType, 'started');
    expect(started, `${sagaType} started in the last hour`).toBeGreaterThan(0);
    // The outcome counts never exceed the cohort.
    let outcomes = 0;
    for (const status of ['running', 'completed', 'failed', 'compensated', 'compensation_failed', 'timed_out', 'stalled']) {
      outcomes += await countOf(page, sagaType, status);
    }
    expect(outcomes).toBeLessThanOrEqual(started);
    await expect(page.locator(`[data-test="failure-rate-${sagaType}"]`)).toHaveText(/^(\d+(\.\d)? %|<0\.1 %|—)$/);
    await expect(row.locator('svg.sparkline')).toHaveCount(3);
  }

  // The orchestrated order saga has steps; they expand without JavaScript.
  const steps = page.locator('[data-test="steps-order"]');
  const stepRows = steps.locator('[data-test^="step-row-order-"]');
  await expect(stepRows.first()).toBeHidden();
  await steps.locator('summary').click();
  await expect(stepRows.first()).toBeVisible();
  await expect(page.locator('[data-test="step-row-order-AuthorizePayment"]')).toBeVisible();

  // Cards: ingest health and the DLQ depth (the demo's services
  // dead-letter some payment and stock events), with its threshold level.
  const ingest = page.locator('[data-test=ingest-health]');
  await expect(ingest).toBeVisible();
  await expect(ingest.locator('[data-test=ingest-events-per-second]')).toHaveText(/^[\d.,<]+$/);
  const dlq = page.locator('[data-test=dlq-card]');
  await expect(dlq).toHaveAttribute('data-available', 'true');
  await expect(dlq).toHaveAttribute('data-level', /^(ok|warning|critical)$/);
  await expect(dlq).toHaveClass(/level-(ok|warning|critical)/);
  await expect(dlq.locator('[data-test=dlq-depth]')).toHaveText(/^\d[\d,]*$/);
  await expect(dlq.locator('[data-test=dlq-oldest-age]')).toHaveText(/^(\d.*|—)$/);
  await expect(dlq).not.toContainText('Not available');
  await expect(page.locator('[data-test=alerts]')).toBeVisible();
  // The demo's history, already in Kafka when it started, is a catch-up
  // shown as information on the ingest card, never a consumer-lag alert.
  const catchUp = ingest.locator('[data-test=ingest-catchup]');
  await expect(catchUp).toHaveAttribute('data-state', /^(catching_up|caught_up)$/);
  await expect(catchUp.locator('[data-test=ingest-catchup-summary]')).toHaveText(
    /^(Caught up with [\d,]+ messages? of history in .+|Catching up: [\d,]+ messages? behind)$/,
  );
  await expect(page.locator('[data-test=alerts] li[data-metric=consumer_lag_p95_ms]')).toHaveCount(0);

  // Lag per topic: the orchestrator's state topic is read by the demo.
  const stateTopic = page.locator('[data-test="topic-lag-saga.state"]');
  await expect(stateTopic).toBeVisible();
  await expect(stateTopic.locator('svg.line-chart')).toHaveCount(1);
  // Consumer-group lag: the watched groups' partitions, or how to watch some.
  const groups = page.locator('[data-test=group-lag]');
  await expect(groups).toBeVisible();
  const partitions = groups.locator('[data-test=group-lag-row]');
  if ((await partitions.count()) > 0) {
    await expect(partitions.first().locator('td').last()).toHaveText(/^\d[\d,]*$/);
  } else {
    await expect(groups).toContainText('--watch-groups');
  }
});

test('every metric has its definition on hover', async ({ page }) => {
  await pauseLive(page);
  await page.goto('/');
  const types = page.locator('[data-test=saga-types]');
  await expect(types).toBeVisible();
  const head = types.locator(':scope > thead');
  await expect(head.locator('th[title^="Failure rate = failed / finished"]')).toHaveCount(1);
  await expect(head.locator('th[title^="Compensation rate = sagas that began compensating / finished"]')).toHaveCount(1);
  // Every header but the type column explains its figure.
  const headers = await head.locator('th').evaluateAll((ths) => ths.map((th) => th.getAttribute('title') ?? ''));
  expect(headers.length).toBeGreaterThan(10);
  expect(headers.slice(1).filter((title) => title.length < 20)).toEqual([]);
  // So does every number of a row, and the lag figures.
  const row = page.locator('[data-test="saga-type-row-order"]');
  const numberTitles = await row.locator('a[data-test]').evaluateAll((links) => links.map((a) => a.getAttribute('title') ?? ''));
  expect(numberTitles.length).toBeGreaterThanOrEqual(12);
  expect(numberTitles.filter((title) => !title.includes('='))).toEqual([]);
  await expect(page.locator('[data-test=topic-lag] thead th[title^="Outbox relay lag = Kafka timestamp − outbox created_at"]')).toHaveCount(1);
  await expect(page.locator('[data-test=topic-lag] thead th[title^="Consumer lag = ingested at − Kafka timestamp"]')).toHaveCount(1);
  await expect(page.locator('[data-test=ingest-health] dt[title]')).toHaveCount(3);
  // Charts carry their values per bucket as SVG titles (the hover text).
  const hover = page.locator('[data-test="saga-type-row-order"] svg.sparkline rect.chart-hover title').first();
  await expect(hover).toHaveText(/UTC — failure rate: /);
});

test('the window picker switches the window and keeps it in the URL', async ({ page }) => {
  await pauseLive(page);
  await page.goto('/');
  await waitForPaused(page); // hydrated: the links navigate on the client
  await expect(page.locator('[data-test=window-caption]')).toHaveAttribute('data-window', '1h');

  await page.locator('[data-test=overview-window-6h]').click();
  await expect(page).toHaveURL(/\/\?window=6h$/);
  await expect(page.locator('[data-test=overview-window-6h]')).toHaveAttribute('aria-current', 'page');
  await expect(page.locator('[data-test=overview-window-1h]')).not.toHaveAttribute('aria-current', 'page');
  await expect(page.locator('[data-test=window-caption]')).toHaveAttribute('data-window', '6h');
  const sixHours = await countOf(page, 'order', 'started');

  await page.locator('[data-test=overview-window-15m]').click();
  await expect(page).toHaveURL(/\/\?window=15m$/);
  await expect(page.locator('[data-test=window-caption]')).toHaveAttribute('data-window', '15m');
  // A shorter window holds at most the sagas of a longer one (give the
  // demo's traffic of the few seconds in between some room).
  const fifteen = await countOf(page, 'order', 'started');
  expect(fifteen).toBeLessThanOrEqual(sixHours + 50);

  // The drill-down links follow the window: since = the window's start.
  const href = (await page.locator('[data-test="count-order-started"]').getAttribute('href'))!;
  const url = new URL(href, 'http://x');
  const span = Date.parse(url.searchParams.get('until')!) - Date.parse(url.searchParams.get('since')!);
  expect(span).toBe(15 * 60_000);

  // A shared URL reproduces the view, and a bad window says what is wrong.
  await page.goto('/?window=7d');
  await expect(page.locator('[data-test=overview-window-7d]')).toHaveAttribute('aria-current', 'page');
  await page.goto('/?window=2h');
  await expect(page.locator('[data-test=error-state]')).toContainText('15m, 1h, 6h, 24h, 7d');
});

test('a count drills down to exactly the sagas behind it', async ({ page }) => {
  // Terminal statuses do not change under the test; the count must fit on
  // one page of the list (50 rows).
  const candidates = ['failed', 'compensation_failed', 'timed_out', 'compensated', 'completed'];
  // Paused: neither the overview nor the list change while the test reads them.
  await pauseLive(page);
  let checked = false;
  for (let attempt = 0; attempt < 4 && !checked; attempt++) {
    for (const window of ['1h', '15m']) {
      await page.goto(`/?window=${window}`);
      await waitForPaused(page);
      let chosen: { status: string; count: number } | undefined;
      for (const status of candidates) {
        const count = await countOf(page, 'order', status);
        if (count > 0 && count < 50) {
          chosen = { status, count };
          break;
        }
      }
      if (!chosen) continue;

      const link = page.locator(`[data-test="count-order-${chosen.status}"]`);
      const href = (await link.getAttribute('href'))!;
      const params = new URL(href, 'http://x').searchParams;
      expect(params.get('saga_type')).toBe('order');
      expect(params.get('status')).toBe(chosen.status);
      expect(params.get('since')).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:00Z$/);
      expect(params.get('until')).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:00Z$/);

      await link.click();
      await expect(page).toHaveURL(/\/sagas\?saga_type=order&status=/);
      const rows = page.locator('[data-test=saga-row]');
      await expect(rows.first()).toBeVisible();
      const types = await rows.evaluateAll((els) => els.map((e) => e.getAttribute('data-saga-type')));
      const statuses = await rows.evaluateAll((els) => els.map((e) => e.getAttribute('data-status')));
      expect(new Set(types)).toEqual(new Set(['order']));
      expect(new Set(statuses)).toEqual(new Set([chosen.status]));
      // The status select shows the filter instead of falling back to "any".
      await expect(page.locator('[data-test=filter-status]')).toHaveValue(chosen.status);
      // Sagas may finish between the overview and the list: then try again.
      if (types.length === chosen.count) {
        checked = true;
        test.info().annotations.push({
          type: 'drill-down',
          description: `${chosen.count} order sagas ${chosen.status} in ${window}`,
        });
      }
      break;
    }
  }
  expect(checked, 'the list showed exactly the number the overview counted').toBeTruthy();
});

test('running counts drill down to a status list the saga list understands', async ({ page }) => {
  await pauseLive(page);
  await page.goto('/');
  const link = page.locator('[data-test="count-order-running"]');
  const href = (await link.getAttribute('href'))!;
  expect(new URL(href, 'http://x').searchParams.get('status')).toBe('running,compensating');
  await page.goto(href);
  await expect(page.locator('[data-test=error-state]')).toHaveCount(0);
  await expect(page.locator('[data-test=filter-status]')).toHaveValue('running,compensating');
  const statuses = await page
    .locator('[data-test=saga-row]')
    .evaluateAll((els) => els.map((e) => e.getAttribute('data-status')));
  for (const status of statuses) {
    // A saga may have finished since: the list shows its status now.
    expect(['running', 'compensating', 'completed', 'failed', 'compensated', 'compensation_failed', 'timed_out', 'stalled']).toContain(status);
  }
});

test('live: the overview refreshes itself and keeps opened steps open', async ({ page }) => {
  await page.goto('/');
  await waitForLive(page);
  const steps = page.locator('[data-test="steps-order"]');
  await steps.locator('summary').click();
  await expect(steps).toHaveAttribute('open', '');
  // The next refresh fetches the figures again through the server function.
  await page.waitForResponse((r) => r.url().includes('fetch_overview') && r.ok(), { timeout: 15_000 });
  await expect(page.locator('[data-test="saga-type-row-order"]')).toBeVisible();
  expect(
    await becomesTrue(async () => (await steps.getAttribute('open')) === '', { timeout: 2_000 }),
    'the step table stays open across a refresh',
  ).toBeTruthy();

  // Paused: no more fetches.
  await page.locator('[data-test=live-toggle]').click();
  await expect(page.locator('[data-test=live-indicator]')).toHaveAttribute('data-state', 'paused');
  let fetched = false;
  page.on('request', (r) => {
    if (r.url().includes('fetch_overview')) fetched = true;
  });
  await page.waitForTimeout(7_000);
  expect(fetched).toBeFalsy();
  await page.locator('[data-test=live-toggle]').click();
  await expect(page.locator('[data-test=live-indicator]')).toHaveAttribute('data-state', 'live');
});

test('the lag page shows charts per topic and the consumer groups', async ({ page }) => {
  await page.goto('/');
  await page.locator('[data-test=nav-lag]').click();
  await expect(page).toHaveURL(/\/lag$/);
  await expect(page.locator('[data-test=nav-lag]')).toHaveAttribute('aria-current', 'page');
  await expect(page.locator('[data-test="topic-lag-saga.state"]')).toBeVisible();
  const charts = page.locator('[data-test="lag-chart-saga.state"] svg.line-chart');
  await expect(charts).toHaveCount(2);
  await expect(charts.first().locator('text.chart-label').first()).toBeVisible();
  await expect(page.locator('[data-test=group-lag]')).toBeVisible();
  await page.locator('[data-test=overview-window-24h]').click();
  await expect(page).toHaveURL(/\/lag\?window=24h$/);
});

test.describe('without JavaScript', () => {
  test.use({ javaScriptEnabled: false });

  test('the overview is rendered on the server and its window links work', async ({ page }) => {
    await page.goto('/');
    await expect(page.locator('[data-test="saga-type-row-order"]')).toBeVisible();
    await expect(page.locator('[data-test=live-indicator]')).not.toHaveText('live');
    await page.locator('[data-test=overview-window-24h]').click();
    await expect(page).toHaveURL(/\/\?window=24h$/);
    await expect(page.locator('[data-test=window-caption]')).toHaveAttribute('data-window', '24h');
    await page.locator('[data-test="count-order-started"]').click();
    await expect(page).toHaveURL(/\/sagas\?saga_type=order&since=/);
    await expect(page.locator('[data-test=saga-row]').first()).toBeVisible();
  });
});
