import { expect, test, type APIRequestContext, type Locator } from '@playwright/test';
import {
  listSagas,
  micros,
  pollFor,
  sagaDetail,
  traceView,
  waitForIngest,
  type SagaDetail,
  type TimelineEvent,
  type TraceView,
} from './helpers';

/** A delay as the page writes it: "35 ms", "2.4 s", "1 m 3 s", "−12 ms skew", or "—". */
const DELAY = /\d+(\.\d+)?\s?(ms|s)|—/;
/** An axis tick label: "+0 ms", "+250 ms", "+1.5 s", "−50 ms", "+1 m 30 s". */
const TICK = /^[+−]\d+(\.\d+)?\s?(ms|s|m|h|d)/;

test.beforeEach(async ({ request }) => {
  await waitForIngest(request);
});

/** A finished saga of `sagaType` with exactly one trace id, and its trace. */
async function finishedSagaTrace(
  request: APIRequestContext,
  sagaType: string,
  status: string,
): Promise<{ saga: SagaDetail; trace: TraceView }> {
  return pollFor(`a ${status} ${sagaType} saga with a trace id`, async () => {
    const items = await listSagas(request, { saga_type: sagaType, status, limit: 20 });
    const found = items.find((s) => s.trace_ids.length === 1);
    if (!found) return undefined;
    const saga = await sagaDetail(request, found.saga_id);
    const trace = await traceView(request, found.trace_ids[0]);
    return { saga, trace };
  });
}

/** Time order of the page: occurred_at, then the API's order. */
function inTimeOrder(events: TimelineEvent[]): TimelineEvent[] {
  return events
    .map((e, i) => ({ e, i }))
    .sort((a, b) => micros(a.e.occurred_at) - micros(b.e.occurred_at) || a.i - b.i)
    .map(({ e }) => e);
}

/** The hop text the page must show for each event, in time order. */
function expectedHops(events: TimelineEvent[]): string[] {
  return events.map((e, i) => (i > 0 && events[i - 1].topic !== e.topic ? `${events[i - 1].topic} → ${e.topic}` : e.topic));
}

/** ms between two RFC 3339 times, each truncated to its ms first (as the
 * page does: Kafka timestamps have ms precision). */
function deltaMs(from: string, to: string): number {
  return Math.floor(micros(to) / 1000) - Math.floor(micros(from) / 1000);
}

/** The page's text for a delay below a second (exact in both formats). */
function shortDelayText(ms: number): string {
  return ms < 0 ? `−${-ms} ms` : `${ms} ms`;
}

async function texts(locator: Locator): Promise<string[]> {
  return locator.evaluateAll((els) => els.map((e) => (e.textContent ?? '').trim()));
}

test('the trace link leads to every event of the trace', async ({ page, request }) => {
  // A finished saga, so its events do not change under the test.
  const { saga, trace } = await finishedSagaTrace(request, 'order', 'completed');
  const traceId = saga.trace_ids[0];

  await page.goto(`/sagas/${saga.saga_id}`);
  await expect(page.locator('[data-test=timeline] [data-test=timeline-row]')).toHaveCount(saga.events.length);
  const link = page.locator('[data-test=saga-header] [data-test=trace-link]');
  await expect(link).toHaveCount(1);
  await link.click();
  await expect(page).toHaveURL(new RegExp(`/traces/${traceId}$`));

  const rows = page.locator('[data-test=trace-events] [data-test=trace-row]');
  await expect(page.locator('[data-test=trace-events]')).toBeVisible();
  await expect(rows).toHaveCount(trace.events.length);
  // Every event of the saga is on the trace page; in the demo a trace is
  // one saga, so the counts match exactly.
  const shown = await rows.evaluateAll((els) => els.map((e) => e.getAttribute('data-event-id')));
  for (const event of saga.events) expect(shown).toContain(event.event_id);
  if (trace.sagas.length === 1) expect(shown).toHaveLength(saga.events.length);
  // The trace's sagas are in the legend, with type, status and a link back.
  const legend = page.locator(`[data-test=trace-legend-item][data-saga-id="${saga.saga_id}"]`);
  await expect(legend).toHaveCount(1);
  await expect(legend).toContainText(saga.saga_type);
  await expect(legend.locator('[data-test=status-badge]')).toHaveAttribute('data-status', saga.status);
  await expect(legend.locator('[data-test=saga-link]')).toHaveAttribute('href', `/sagas/${saga.saga_id}`);
});

test('one time axis with the topic hop and the publish and ingest delay of each event', async ({ page, request }) => {
  // A choreographed saga: its events travel over several topics.
  const { trace } = await finishedSagaTrace(request, 'scan_reward', 'completed');
  const events = inTimeOrder(trace.events);
  await page.goto(`/traces/${trace.trace_id}`);

  // The shared axis: ticks from +0 ms, labelled as durations, in order.
  const axis = page.locator('[data-test=trace-axis]');
  await expect(axis).toBeVisible();
  const ticks = await texts(axis.locator('[data-test=trace-axis-tick]'));
  expect(ticks.length).toBeGreaterThanOrEqual(2);
  expect(ticks).toContain('+0 ms');
  for (const tick of ticks) expect(tick).toMatch(TICK);

  // One row per event, in time order, each on the axis.
  const rows = page.locator('[data-test=trace-events] [data-test=trace-row]');
  await expect(rows).toHaveCount(events.length);
  expect(await rows.evaluateAll((els) => els.map((e) => e.getAttribute('data-event-id')))).toEqual(
    events.map((e) => e.event_id),
  );

  // The hop: "topicA → topicB" where the topic changes, else the topic.
  const hops = await texts(rows.locator('[data-test=trace-hop]'));
  expect(hops).toEqual(expectedHops(events));
  expect(hops.some((h) => h.includes('→') || events.some((e) => h === e.topic))).toBe(true);
  expect(hops[0]).toBe(events[0].topic);

  // Delays: text per event, "—" without a Kafka timestamp, never hidden.
  const publish = await texts(rows.locator('[data-test=trace-publish-delay]'));
  const ingest = await texts(rows.locator('[data-test=trace-ingest-delay]'));
  expect(publish).toHaveLength(events.length);
  expect(ingest).toHaveLength(events.length);
  events.forEach((event, i) => {
    expect(publish[i]).toMatch(DELAY);
    expect(ingest[i]).toMatch(DELAY);
    if (event.published_at === null) {
      expect(publish[i]).toBe('—');
      expect(ingest[i]).toBe('—');
      return;
    }
    const p = deltaMs(event.occurred_at, event.published_at);
    const g = deltaMs(event.published_at, event.ingested_at);
    if (Math.abs(p) < 1000) expect(publish[i]).toBe(p < 0 ? `${shortDelayText(p)} skew` : shortDelayText(p));
    if (Math.abs(g) < 1000) expect(ingest[i]).toBe(g < 0 ? `${shortDelayText(g)} skew` : shortDelayText(g));
  });
  // Each delay explains itself on hover.
  await expect(rows.first().locator('[data-test=trace-publish-delay]')).toHaveAttribute('title', /published_at − occurred_at/);
  await expect(rows.first().locator('[data-test=trace-ingest-delay]')).toHaveAttribute('title', /ingested_at − published_at/);

  // The summary line.
  const summary = page.locator('[data-test=trace-summary]');
  await expect(summary).toBeVisible();
  await expect(summary.locator('[data-test=trace-summary-events]')).toHaveText(String(events.length));
  const sagaIds = new Set([...trace.sagas.map((s) => s.saga_id), ...events.map((e) => e.saga_id)]);
  await expect(summary.locator('[data-test=trace-summary-sagas]')).toHaveText(String(sagaIds.size));
  await expect(summary.locator('[data-test=trace-summary-topics]')).toHaveText(
    String(new Set(events.map((e) => e.topic)).size),
  );
  await expect(summary.locator('[data-test=trace-summary-span]')).toHaveText(DELAY);
  await expect(summary.locator('[data-test=trace-summary-max-publish]')).toHaveText(DELAY);
  await expect(summary.locator('[data-test=trace-summary-max-ingest]')).toHaveText(DELAY);
  const published = events.filter((e) => e.published_at !== null);
  if (published.length > 0) {
    const maxPublish = Math.max(...published.map((e) => deltaMs(e.occurred_at, e.published_at!)));
    if (maxPublish >= 0 && maxPublish < 1000) {
      await expect(summary.locator('[data-test=trace-summary-max-publish]')).toHaveText(shortDelayText(maxPublish));
    }
  }
});

test.describe('without JavaScript', () => {
  test.use({ javaScriptEnabled: false });

  test('the trace axis is rendered on the server', async ({ page, request }) => {
    const { trace } = await finishedSagaTrace(request, 'order', 'completed');
    await page.goto(`/traces/${trace.trace_id}`);
    await expect(page.locator('[data-test=trace-axis] [data-test=trace-axis-tick]').first()).toHaveText('+0 ms');
    await expect(page.locator('[data-test=trace-summary-events]')).toHaveText(String(trace.events.length));
    const rows = page.locator('[data-test=trace-events] [data-test=trace-row]');
    await expect(rows).toHaveCount(trace.events.length);
    await expect(rows.first().locator('[data-test=trace-hop]')).toHaveText(inTimeOrder(trace.events)[0].topic);
    await expect(rows.first().locator('[data-test=trace-publish-delay]')).toHaveText(DELAY);
    // Rows expand without JavaScript (<details>) to the event's payload.
    const payload = rows.first().locator('[data-test=event-payload]');
    await expect(payload).toBeHidden();
    await rows.first().locator('summary').click();
    await expect(payload).toBeVisible();
  });
});
