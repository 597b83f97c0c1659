import { expect, test, type APIRequestContext } from '@playwright/test';
import { listSagas, pollFor, waitForIngest, waitForLive } from './helpers';

/**
 * The span waterfall beside the saga. The demo simulator exports the spans
 * of its services over OTLP/HTTP JSON to the demo's own `/v1/traces`; a
 * synthetic trace of 10,000 spans checks that the page stays responsive
 * (virtualised rows, collapse).
 */

/** `playwright.config.ts` starts the demo with `--otlp-token` set to this. */
const OTLP_TOKEN = process.env.SAGASCOPE_E2E_OTLP_TOKEN ?? 'e2e-otlp-token';

interface SpanView {
  trace_id: string;
  span_id: string;
  parent_span_id: string | null;
  name: string;
  service: string;
  status: string;
}

interface TraceSpans {
  trace_id: string;
  source: string;
  spans: SpanView[];
  truncated: boolean;
  external_url: string | null;
}

/** The spans of each trace of a saga, as `GET /api/v1/sagas/{id}/spans` returns them. */
async function sagaSpans(request: APIRequestContext, sagaId: string): Promise<TraceSpans[]> {
  const response = await request.get(`/api/v1/sagas/${encodeURIComponent(sagaId)}/spans`);
  if (!response.ok()) return [];
  const body = await response.json();
  const list = Array.isArray(body) ? body : body.items ?? body.traces ?? [];
  return list as TraceSpans[];
}

async function traceSpanCount(request: APIRequestContext, traceId: string): Promise<number> {
  const response = await request.get(`/api/v1/traces/${traceId}/spans`);
  if (!response.ok()) return 0;
  const body = (await response.json()) as TraceSpans | null;
  return body?.spans?.length ?? 0;
}

function randomHex(digits: number): string {
  let out = '';
  for (let i = 0; i < digits; i++) out += Math.floor(Math.random() * 16).toString(16);
  return out;
}

test.beforeEach(async ({ request }) => {
  await waitForIngest(request, 60_000);
});

test('a demo saga shows the span waterfall of its trace, its events on the same axis, and span details', async ({
  page,
  request,
}) => {
  // A finished saga from the list whose trace has spans from the simulator.
  const { sagaId, trace } = await pollFor(
    'a finished saga with spans from the simulator',
    async () => {
      const sagas = await listSagas(request, { status: 'completed', limit: 30 });
      for (const saga of sagas.filter((s) => s.trace_ids.length === 1)) {
        const traces = await sagaSpans(request, saga.saga_id);
        const trace = traces.find((t) => t.trace_id === saga.trace_ids[0] && t.spans.length > 1);
        if (trace) return { sagaId: saga.saga_id, trace };
      }
      return undefined;
    },
    { timeout: 90_000, interval: 1_000 },
  );

  await page.goto(`/sagas/${sagaId}`);
  const waterfall = page.locator(`[data-test=span-waterfall][data-trace-id="${trace.trace_id}"]`);
  await expect(waterfall).toBeVisible();
  const rows = waterfall.locator('[data-test=span-row]');
  // Spans may keep arriving while the saga page loads: at least those seen.
  const shown = Number(await waterfall.locator('[data-test=span-count]').getAttribute('data-count'));
  expect(shown).toBeGreaterThanOrEqual(trace.spans.length);
  expect(await rows.count()).toBe(Math.min(shown, 50));
  expect(await rows.count()).toBeGreaterThan(1);
  const services = await rows.evaluateAll((els) => els.map((e) => e.getAttribute('data-service') ?? ''));
  for (const service of services) expect(service).toMatch(/-service$/);
  await expect(waterfall.locator('[data-test=span-bar]').first()).toHaveAttribute('style', /left:[\d.]+%;width:[\d.]+%/);
  await expect(waterfall.locator('[data-test=span-axis-tick]').first()).toHaveText(/^\+0/);

  // Every saga event is a marker on the same axis, titled with its type.
  const eventCount = Number(await page.locator('[data-test=event-count]').textContent());
  const markers = waterfall.locator('[data-test=event-marker]');
  await expect(markers).toHaveCount(eventCount);
  await expect(markers.first()).toHaveAttribute('title', /\S+ · .+ · \d\d:\d\d:\d\d\.\d{3}/);
  const lefts = await markers.evaluateAll((els) => els.map((e) => parseFloat((e as HTMLElement).style.left)));
  for (const left of lefts) {
    expect(left).toBeGreaterThanOrEqual(0);
    expect(left).toBeLessThanOrEqual(100);
  }
  // Events and spans share one axis: the events happen while the spans run,
  // so the markers are not all squeezed at one end.
  expect(Math.max(...lefts) - Math.min(...lefts)).toBeGreaterThan(1);

  // A click opens the span's detail (after hydration).
  await waitForLive(page);
  const first = rows.first();
  const service = await first.getAttribute('data-service');
  await first.locator('.sw-name').click();
  const detail = page.locator('[data-test=span-detail]');
  await expect(detail).toBeVisible();
  await expect(detail).toHaveAttribute('data-span-id', (await first.getAttribute('data-span-id'))!);
  await expect(detail.locator('[data-test=span-detail-service]')).toHaveText(service!);
  await expect(detail.locator('[data-test=span-attributes]')).toBeVisible();
  await expect(first).toHaveClass(/selected/);
  await page.keyboard.press('Escape');
  await expect(detail).toHaveCount(0);
});

test('a trace without spans says how to send them', async ({ page }) => {
  const traceId = randomHex(32);
  await page.goto(`/traces/${traceId}`);
  const empty = page.locator('[data-test=trace-spans] [data-test=span-empty]');
  await expect(empty).toContainText(`No spans received for trace ${traceId}`);
  await expect(empty).toContainText('/v1/traces');
});

/** A deep and wide tree: a root with 100 block heads; in each block a chain
 * of 49 nested spans and 50 siblings under the head. */
function syntheticTrace(traceId: string, count: number) {
  const ids = Array.from({ length: count }, () => randomHex(16));
  const t0 = BigInt(Date.now() - 60_000) * 1_000_000n;
  const services = ['e2e-gateway', 'e2e-orders', 'e2e-payments', 'e2e-stock', 'e2e-mailer'];
  const parentOf = (i: number): number | null => {
    if (i === 0) return null;
    const k = (i - 1) % 100;
    const head = i - k;
    if (k === 0) return 0;
    return k < 50 ? i - 1 : head;
  };
  const spans = ids.map((spanId, i) => {
    const start = t0 + BigInt(i) * 1_000n;
    const end = start + BigInt(count - i) * 1_000n;
    const parent = parentOf(i);
    return {
      service: services[i % services.length],
      span: {
        traceId,
        spanId,
        ...(parent === null ? {} : { parentSpanId: ids[parent] }),
        name: `op-${i}`,
        kind: 2,
        startTimeUnixNano: start.toString(),
        endTimeUnixNano: end.toString(),
        attributes: [{ key: 'e2e.index', value: { intValue: String(i) } }],
        status: i % 997 === 5 ? { code: 2, message: `synthetic failure ${i}` } : { code: 1 },
      },
    };
  });
  return { ids, spans };
}

function otlpBody(spans: { service: string; span: object }[]) {
  const byService = new Map<string, object[]>();
  for (const { service, span } of spans) {
    if (!byService.has(service)) byService.set(service, []);
    byService.get(service)!.push(span);
  }
  return {
    resourceSpans: [...byService].map(([service, list]) => ({
      resource: { attributes: [{ key: 'service.name', value: { stringValue: service } }] },
      scopeSpans: [{ scope: { name: 'sagascope-e2e' }, spans: list }],
    })),
  };
}

test('a trace of 10,000 spans renders virtualised, scrolls to its last span and collapses without freezing', async ({
  page,
  request,
}) => {
  test.setTimeout(120_000);
  const COUNT = 10_000;
  const traceId = randomHex(32);
  const { ids, spans } = syntheticTrace(traceId, COUNT);
  for (let from = 0; from < COUNT; from += 2_000) {
    const response = await request.post('/v1/traces', {
      headers: { authorization: `Bearer ${OTLP_TOKEN}`, 'content-type': 'application/json' },
      data: otlpBody(spans.slice(from, from + 2_000)),
    });
    expect(response.status(), await response.text()).toBeLessThan(300);
  }
  await pollFor('the 10,000 spans stored', async () =>
    (await traceSpanCount(request, traceId)) === COUNT ? true : undefined,
  );

  const started = Date.now();
  await page.goto(`/traces/${traceId}`);
  const waterfall = page.locator('[data-test=span-waterfall]');
  await expect(waterfall.locator('[data-test=span-count]')).toHaveText('10,000 spans', { timeout: 20_000 });
  const rendered = Date.now() - started;
  expect(rendered, `the page rendered in ${rendered} ms`).toBeLessThan(15_000);
  await expect(waterfall.locator('[data-test=span-errors]')).toHaveText(/^\d+ errors?$/);

  const rows = waterfall.locator('[data-test=span-row]');
  const inDom = await rows.count();
  expect(inDom, 'only the rows in view are in the DOM').toBeLessThanOrEqual(100);
  expect(inDom).toBeGreaterThan(10);

  await waitForLive(page, 30_000);
  const hydrated = Date.now() - started;
  expect(hydrated, `interactive after ${hydrated} ms`).toBeLessThan(30_000);

  // To the bottom: the last span (the last sibling of the last block).
  const viewport = waterfall.locator('[data-test=span-viewport]');
  let t = Date.now();
  await viewport.evaluate((el) => {
    el.scrollTop = el.scrollHeight;
  });
  const last = waterfall.locator(`[data-test=span-row][data-span-id="${ids[COUNT - 1]}"]`);
  await expect(last).toBeVisible({ timeout: 5_000 });
  await expect(last).toContainText(`op-${COUNT - 1}`);
  const scrolled = Date.now() - t;
  expect(scrolled, 'the scroll rendered promptly').toBeLessThan(3_000);
  expect(await rows.count()).toBeLessThanOrEqual(100);

  // The detail of a span far down.
  await last.locator('.sw-name').click();
  await expect(page.locator('[data-test=span-detail]')).toHaveAttribute('data-span-id', ids[COUNT - 1]);
  await expect(page.locator('[data-test=span-detail] [data-test=span-attributes]')).toContainText('e2e.index');

  // Back to the top; collapsing the root leaves one row.
  await viewport.evaluate((el) => {
    el.scrollTop = 0;
  });
  const root = waterfall.locator(`[data-test=span-row][data-span-id="${ids[0]}"]`);
  await expect(root).toBeVisible();
  t = Date.now();
  await root.locator('[data-test=span-toggle]').click();
  await expect(rows).toHaveCount(1);
  await expect(root).toHaveAttribute('data-collapsed', 'true');
  const collapsedIn = Date.now() - t;
  expect(collapsedIn, 'the collapse rendered promptly').toBeLessThan(3_000);
  // The figures, for the record (the CI log keeps them).
  console.log(
    `10,000 spans: server-rendered in ${rendered} ms, interactive after ${hydrated} ms, ` +
      `${inDom} rows in the DOM, scroll to the end ${scrolled} ms, collapse ${collapsedIn} ms`,
  );

  // "Collapse below depth 1": the root and its 100 block heads.
  await waterfall.locator('[data-test=span-expand-all]').click();
  await expect.poll(() => rows.count()).toBeGreaterThan(1);
  await waterfall.locator('[data-test=span-collapse-depth][data-depth="1"]').click();
  await viewport.evaluate((el) => {
    el.scrollTop = el.scrollHeight;
  });
  const lastHead = waterfall.locator(`[data-test=span-row][data-span-id="${ids[COUNT - 99]}"]`);
  await expect(lastHead).toBeVisible();
  await expect(lastHead).toHaveAttribute('data-depth', '1');
  const depths = await rows.evaluateAll((els) => els.map((e) => Number(e.getAttribute('data-depth'))));
  for (const depth of depths) expect(depth).toBeLessThanOrEqual(1);
});
