import { expect, test, type APIRequestContext } from '@playwright/test';
import { ms, pollFor, type SagaDetail, type SagaSummary } from './helpers';

/**
 * Issue 13: `sagascope demo --without-rules` (the second web server of
 * `playwright.config.ts`). With no rules file the simulator's choreographed
 * order saga (Debezium CDC outbox rows of the order and stock services,
 * CloudEvents `com.shop.payment.*` of the payment service, tied by the
 * trace id alone) is typed `Order` (its first event's aggregate type), and
 * its outcome comes from its event names as soon as they are ingested:
 * `…PaymentFailed` → failed, `ReleaseStockRequested` → compensating,
 * `StockReleased` → compensated, `OrderConfirmed` → completed. Before, they
 * read `running` until quiet for `--stall-after` (5 min), and then only as
 * an inferred (`≈`) outcome.
 */
const BASE = 'http://127.0.0.1:3008';
const CHOREOGRAPHY = 'Order';
/** The demo's `--stall-after` default: the sweep infers nothing sooner. */
const STALL_AFTER_MS = 5 * 60_000;
const FAILURE_OUTCOMES = ['failed', 'compensating', 'compensated'];

test.use({ baseURL: BASE });
// Each wait below is at most 60 s; a test may wait twice or three times.
test.describe.configure({ timeout: 150_000 });

interface Summary extends SagaSummary {
  status_inferred?: boolean;
}

interface Detail extends SagaDetail {
  status_inferred?: boolean;
}

async function list(request: APIRequestContext, params: Record<string, string | number>): Promise<Summary[]> {
  const response = await request.get(`${BASE}/api/v1/sagas`, { params });
  expect(response.ok(), `GET ${BASE}/api/v1/sagas ${JSON.stringify(params)}: ${response.status()}`).toBeTruthy();
  return ((await response.json()) as { items: Summary[] }).items;
}

async function detail(request: APIRequestContext, sagaId: string): Promise<Detail> {
  const response = await request.get(`${BASE}/api/v1/sagas/${encodeURIComponent(sagaId)}`);
  expect(response.ok(), `GET ${BASE}/api/v1/sagas/${sagaId}: ${response.status()}`).toBeTruthy();
  return (await response.json()) as Detail;
}

/** The event of `detail` whose type ends with `name` (CloudEvents types are namespaced). */
function eventNamed(saga: Detail, name: string) {
  return saga.events.find((e) => e.event_type === name || e.event_type.endsWith(`.${name}`));
}

test('a failed choreography is failed, compensating or compensated at once, not inferred', async ({ request }) => {
  // Any choreography whose payment failed: its status is the projection's
  // own (not the quiet sweep's `≈`), and its timeline phases say why.
  const checked = new Set<string>();
  const saga = await pollFor(
    `a ${CHOREOGRAPHY} saga whose payment failed, with a failure status by name`,
    async () => {
      const sagas = await list(request, { saga_type: CHOREOGRAPHY, status: FAILURE_OUTCOMES.join(','), limit: 200 });
      for (const summary of sagas) {
        if (summary.status_inferred || checked.has(summary.saga_id)) continue;
        checked.add(summary.saga_id);
        const found = await detail(request, summary.saga_id);
        if (eventNamed(found, 'PaymentFailed') && !found.status_inferred) return found;
      }
      return undefined;
    },
    { timeout: 60_000, interval: 1_000 },
  );
  expect(FAILURE_OUTCOMES).toContain(saga.status);
  expect(saga.saga_type).toBe(CHOREOGRAPHY);
  const failure = eventNamed(saga, 'PaymentFailed')!;
  expect(failure.phase).toBe('step_failed');
  expect(['card declined', 'insufficient funds']).toContain(failure.error);
  expect(saga.failure_reason).toBe(failure.error);
  // The status follows the latest compensation event by name; read again
  // (it may have moved on since it was listed) until status and events
  // agree.
  const outcomeOf = (found: Detail) => {
    const requested = eventNamed(found, 'ReleaseStockRequested');
    const released = eventNamed(found, 'StockReleased');
    if (requested) expect(requested.phase).toBe('compensation_started');
    if (released) expect(released.phase).toBe('step_compensated');
    const expected = released ? 'compensated' : requested ? 'compensating' : 'failed';
    return { expected, status: found.status, inferred: !!found.status_inferred };
  };
  await expect
    .poll(async () => {
      const { expected, status, inferred } = outcomeOf(await detail(request, saga.saga_id));
      return status === expected && !inferred;
    }, { timeout: 30_000 })
    .toBe(true);
  // A failed or compensated saga has ended: its end time is its deciding
  // event's.
  const ended = await detail(request, saga.saga_id);
  if (ended.status !== 'compensating') {
    expect(ended.ended_at).not.toBeNull();
    expect(ended.duration_ms).not.toBeNull();
  }
});

test('live choreographies show their failure within seconds of their events', async ({ request }) => {
  // Sagas whose last event is younger than --stall-after cannot have been
  // touched by the stall sweep: a failure status there comes from the
  // event names alone. The simulator fails about one payment in eight.
  const live = (s: Summary) => Date.now() - ms(s.last_event_at) < STALL_AFTER_MS - 60_000;
  await expect
    .poll(
      async () => {
        const sagas = await list(request, { saga_type: CHOREOGRAPHY, status: FAILURE_OUTCOMES.join(','), limit: 200 });
        return sagas.filter((s) => live(s) && !s.status_inferred).length;
      },
      { timeout: 60_000, intervals: [1_000, 2_000] },
    )
    .toBeGreaterThan(0);
  // And `OrderConfirmed` completes the others at once.
  await expect
    .poll(
      async () => {
        const sagas = await list(request, { saga_type: CHOREOGRAPHY, status: 'completed', limit: 200 });
        return sagas.filter((s) => live(s) && !s.status_inferred && s.ended_at !== null).length;
      },
      { timeout: 60_000, intervals: [1_000, 2_000] },
    )
    .toBeGreaterThan(0);
  // No saga of this type reads `running` once its payment failed (read
  // again: the failure may have been written between the two reads).
  const running = await list(request, { saga_type: CHOREOGRAPHY, status: 'running', limit: 200 });
  for (const summary of running.slice(0, 20)) {
    const saga = await detail(request, summary.saga_id);
    if (saga.status !== 'running' || !eventNamed(saga, 'PaymentFailed')) continue;
    await expect
      .poll(async () => (await detail(request, summary.saga_id)).status, { timeout: 10_000 })
      .not.toBe('running');
  }
});

test('the overview counts the failed choreographies', async ({ request }) => {
  // Outcomes read from event names (not inferred by the stall sweep, which
  // also ends the demo's old history): the overview must count every one.
  const byName = await pollFor('failed or compensated choreographies decided by name', async () => {
    const sagas = await list(request, { saga_type: CHOREOGRAPHY, status: 'failed,compensated', limit: 500 });
    const recent = sagas.filter((s) => !s.status_inferred && Date.now() - ms(s.started_at) < 45 * 60_000);
    return recent.length > 0 ? recent : undefined;
  });
  const response = await request.get(`${BASE}/api/v1/metrics/overview`, { params: { window: '1h' } });
  expect(response.ok()).toBeTruthy();
  const overview = (await response.json()) as {
    saga_types: { saga_type: string; counts: { failed: number; compensated: number; finished: number } }[];
  };
  const order = overview.saga_types.find((t) => t.saga_type === CHOREOGRAPHY);
  expect(order, `${CHOREOGRAPHY} in the overview`).toBeDefined();
  const failed = byName.filter((s) => s.status === 'failed').length;
  const compensated = byName.filter((s) => s.status === 'compensated').length;
  expect(order!.counts.failed + order!.counts.compensated).toBeGreaterThanOrEqual(failed + compensated);
  expect(order!.counts.failed + order!.counts.compensated).toBeGreaterThan(0);
});

test('the saga page shows the outcome by name without the inferred mark', async ({ page, request }) => {
  const checked = new Set<string>();
  const saga = await pollFor(
    `a compensated ${CHOREOGRAPHY} saga`,
    async () => {
      const sagas = await list(request, { saga_type: CHOREOGRAPHY, status: 'compensated', limit: 200 });
      for (const summary of sagas) {
        if (summary.status_inferred || checked.has(summary.saga_id)) continue;
        checked.add(summary.saga_id);
        const found = await detail(request, summary.saga_id);
        if (eventNamed(found, 'StockReleased')) return found;
      }
      return undefined;
    },
    { timeout: 60_000, interval: 1_000 },
  );
  await page.goto(`${BASE}/sagas/${encodeURIComponent(saga.saga_id)}`);
  const status = page.locator('[data-test=saga-header] [data-test=saga-status]');
  await expect(status).toHaveAttribute('data-status', 'compensated');
  await expect(status).not.toHaveAttribute('data-inferred', 'true');
  const timeline = page.locator('[data-test=timeline]');
  const failed = timeline.locator('[data-test=timeline-row][data-phase=step_failed][data-step=PaymentFailed]');
  await expect(failed).toHaveCount(1);
  await expect(failed.locator('[data-test=event-error]')).toContainText(saga.failure_reason ?? '');
  await expect(timeline.locator('[data-test=timeline-row][data-phase=compensation_started]').first()).toBeVisible();
  await expect(timeline.locator('[data-test=timeline-row][data-phase=step_compensated]').first()).toBeVisible();

  // The list, filtered to this type and compensated, shows it the same way.
  await page.goto(`${BASE}/sagas?saga_type=${CHOREOGRAPHY}&status=compensated&q=${encodeURIComponent(saga.saga_id)}`);
  const row = page.locator(`[data-test=saga-row][data-saga-id="${saga.saga_id}"]`);
  await expect(row).toHaveAttribute('data-status', 'compensated', { timeout: 20_000 });
  await expect(row.locator('[data-status]')).not.toHaveAttribute('data-inferred', 'true');
});
