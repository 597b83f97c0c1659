import { expect, type APIRequestContext, type Locator, type Page } from '@playwright/test';

/** One saga as `GET /api/v1/sagas` returns it. */
export interface SagaSummary {
  saga_id: string;
  saga_type: string;
  status: string;
  started_at: string;
  ended_at: string | null;
  duration_ms: number | null;
  current_step: string | null;
  failed_step: string | null;
  failure_reason: string | null;
  trace_ids: string[];
  business_keys: string[];
  event_count: number;
  last_event_at: string;
}

export interface TimelineEvent {
  event_id: string;
  saga_id: string;
  phase: string;
  step: string | null;
  event_type: string;
  occurred_at: string;
  published_at: string | null;
  ingested_at: string;
  topic: string;
  partition: number;
  offset: number;
  trace_id: string | null;
  span_id: string | null;
  headers: { key: string; value: string }[];
  payload: unknown;
  error: string | null;
}

export interface SagaDetail extends SagaSummary {
  events: TimelineEvent[];
}

export interface TraceView {
  trace_id: string;
  sagas: SagaSummary[];
  events: TimelineEvent[];
}

export interface IngestError {
  id: number;
  topic: string;
  partition: number;
  offset: number;
  reason: string;
  first_bytes: string;
  key: string | null;
  published_at: string | null;
  ingested_at: string;
}

export const SAGA_TYPES = ['order', 'scan_reward', 'chat_message', 'order_choreography'] as const;

/** Milliseconds since the epoch of an RFC 3339 time with up to ns digits. */
export function ms(time: string): number {
  return Date.parse(time);
}

/** Microsecond-precise comparable form of an RFC 3339 UTC time. */
export function micros(time: string): number {
  const m = /^(.*T\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)$/.exec(time);
  if (!m) return Date.parse(time) * 1000;
  const frac = (m[2] ?? '').padEnd(6, '0').slice(0, 6);
  return Date.parse(`${m[1]}${m[3]}`) * 1000 + Number(frac);
}

export async function listSagas(
  request: APIRequestContext,
  params: Record<string, string | number> = {},
): Promise<SagaSummary[]> {
  const response = await request.get('/api/v1/sagas', { params });
  expect(response.ok(), `GET /api/v1/sagas ${JSON.stringify(params)}: ${response.status()}`).toBeTruthy();
  const body = (await response.json()) as { items: SagaSummary[] };
  return body.items;
}

export async function sagaDetail(request: APIRequestContext, sagaId: string): Promise<SagaDetail> {
  const response = await request.get(`/api/v1/sagas/${encodeURIComponent(sagaId)}`);
  expect(response.ok(), `GET /api/v1/sagas/${sagaId}: ${response.status()}`).toBeTruthy();
  return (await response.json()) as SagaDetail;
}

export async function traceView(request: APIRequestContext, traceId: string): Promise<TraceView> {
  const response = await request.get(`/api/v1/traces/${encodeURIComponent(traceId)}`);
  expect(response.ok(), `GET /api/v1/traces/${traceId}: ${response.status()}`).toBeTruthy();
  return (await response.json()) as TraceView;
}

export async function ingestErrors(request: APIRequestContext): Promise<IngestError[]> {
  const response = await request.get('/api/v1/ingest/errors');
  expect(response.ok(), `GET /api/v1/ingest/errors: ${response.status()}`).toBeTruthy();
  return ((await response.json()) as { items: IngestError[] }).items;
}

/**
 * Polls `probe` until it returns a value (not undefined) or `timeout` ms
 * pass; fails the test with `what` on timeout. Never a blind sleep: the
 * demo's ingest needs a few seconds (consumer-group join) after start.
 */
export async function pollFor<T>(
  what: string,
  probe: () => Promise<T | undefined>,
  { timeout = 40_000, interval = 500 }: { timeout?: number; interval?: number } = {},
): Promise<T> {
  const deadline = Date.now() + timeout;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeout} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, interval));
  }
}

/** Waits until the store holds sagas of every demo type. */
export async function waitForIngest(request: APIRequestContext, timeout = 40_000): Promise<void> {
  await pollFor(
    'sagas of every type in the store',
    async () => {
      const found = await Promise.all(SAGA_TYPES.map((t) => listSagas(request, { saga_type: t, limit: 1 })));
      return found.every((items) => items.length > 0) ? true : undefined;
    },
    { timeout },
  );
}

/** The order saga the demo guarantees: payment declined, stock released. */
export async function findPaymentCompensatedOrder(request: APIRequestContext): Promise<SagaDetail> {
  const checked = new Set<string>();
  return pollFor(
    'a compensated order saga whose AuthorizePayment failed',
    async () => {
      const sagas = await listSagas(request, { saga_type: 'order', status: 'compensated', limit: 200 });
      for (const saga of sagas) {
        if (checked.has(saga.saga_id)) continue;
        checked.add(saga.saga_id);
        const detail = await sagaDetail(request, saga.saga_id);
        const failed = detail.events.some(
          (e) => e.phase === 'step_failed' && e.step === 'AuthorizePayment' && (e.error ?? '').includes('card declined'),
        );
        const released = detail.events.some(
          (e) => e.step === 'ReleaseStock' && (e.phase === 'step_compensated' || e.phase === 'compensation_started'),
        );
        if (failed && released) return detail;
      }
      return undefined;
    },
    { timeout: 40_000 },
  );
}

/** Hydration is done once the page's live stream reports "live". */
export async function waitForLive(page: Page, timeout = 20_000): Promise<void> {
  const indicator = page.locator('[data-test=live-indicator]');
  await expect(indicator).toHaveAttribute('data-state', 'live', { timeout });
  await expect(indicator).toHaveText('live');
}

export async function sagaIdsShown(page: Page): Promise<string[]> {
  return page
    .locator('[data-test=saga-row]')
    .evaluateAll((rows) => rows.map((r) => r.getAttribute('data-saga-id') ?? ''));
}

export function rowOf(page: Page, sagaId: string): Locator {
  return page.locator(`[data-test=saga-row][data-saga-id="${sagaId}"]`);
}

/** Fails the test if the page ever opens a JavaScript dialog. */
export function failOnDialog(page: Page): string[] {
  const dialogs: string[] = [];
  page.on('dialog', async (dialog) => {
    dialogs.push(`${dialog.type()}: ${dialog.message()}`);
    await dialog.dismiss().catch(() => {});
  });
  return dialogs;
}

/** Polls `condition` until true (→ true) or `timeout` ms pass (→ false). */
export async function becomesTrue(
  condition: () => Promise<boolean>,
  { timeout, interval = 250 }: { timeout: number; interval?: number },
): Promise<boolean> {
  const deadline = Date.now() + timeout;
  for (;;) {
    if (await condition()) return true;
    if (Date.now() > deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, interval));
  }
}

// ---------- sign-in and dead letters (issue 5) ----------

/** The demo's users; `playwright.config.ts` starts it with these passwords. */
export const OPERATOR = {
  name: 'operator',
  password: process.env.SAGASCOPE_E2E_OPERATOR_PASSWORD ?? 'operator-e2e-password',
} as const;
export const VIEWER = {
  name: 'viewer',
  password: process.env.SAGASCOPE_E2E_VIEWER_PASSWORD ?? 'viewer-e2e-password',
} as const;

/** Signs in through the login form and lands on `next`. */
export async function signIn(
  page: Page,
  user: { name: string; password: string },
  next = '/',
): Promise<void> {
  await page.goto(`/login?next=${encodeURIComponent(next)}`);
  await page.locator('[data-test=login-name]').fill(user.name);
  await page.locator('[data-test=login-password]').fill(user.password);
  await page.locator('[data-test=login-submit]').click();
  await expect(page.locator('[data-test=current-user]')).toHaveAttribute('data-user', user.name, { timeout: 20_000 });
}

/** The session's CSRF token, from the page's `csrf-token` meta tag. */
export async function csrfToken(page: Page): Promise<string> {
  const token = await page.locator('meta[name=csrf-token]').getAttribute('content');
  expect(token, 'the page carries the session CSRF token').toBeTruthy();
  return token!;
}

/** One dead letter as `GET /api/v1/dlq` lists it. */
export interface DeadLetter {
  id: string;
  dlq_topic: string;
  dlq_partition: number;
  dlq_offset: number;
  dead_lettered_at: string;
  original_topic: string | null;
  original_partition: number | null;
  original_offset: number | null;
  exception_class: string | null;
  exception_message: string | null;
  failure_group: string;
  saga_id: string | null;
  saga_type: string | null;
  state: string;
  state_reason: string | null;
  retry_of: string | null;
  retry_count: number;
  failed_again_of: string | null;
}

export interface DeadLetterGroup {
  failure_group: string;
  original_topic: string | null;
  exception_class: string | null;
  depth: number;
  total: number;
}

export async function listDeadLetters(
  request: APIRequestContext,
  params: Record<string, string | number> = {},
): Promise<DeadLetter[]> {
  const response = await request.get('/api/v1/dlq', { params });
  expect(response.ok(), `GET /api/v1/dlq ${JSON.stringify(params)}: ${response.status()}`).toBeTruthy();
  return ((await response.json()) as { items: DeadLetter[] }).items;
}

export async function deadLetterGroups(
  request: APIRequestContext,
  params: Record<string, string | number> = {},
): Promise<DeadLetterGroup[]> {
  const response = await request.get('/api/v1/dlq/groups', { params });
  expect(response.ok(), `GET /api/v1/dlq/groups: ${response.status()}`).toBeTruthy();
  return ((await response.json()) as { groups: DeadLetterGroup[] }).groups;
}

export async function deadLetter(request: APIRequestContext, id: string): Promise<DeadLetter> {
  const response = await request.get(`/api/v1/dlq/${encodeURIComponent(id)}`);
  expect(response.ok(), `GET /api/v1/dlq/${id}: ${response.status()}`).toBeTruthy();
  return (await response.json()) as DeadLetter;
}

/** The page of a dead letter (`{topic}/{partition}/{offset}` as path segments). */
export function deadLetterPath(id: string): string {
  return `/dlq/messages/${id.split('/').map(encodeURIComponent).join('/')}`;
}

/**
 * A dead letter in state `new` that belongs to a saga, newest first,
 * optionally one whose exception message contains `reason`; waits for the
 * demo to dead-letter one. `skip` excludes ids other tests already used.
 */
export async function findNewDeadLetter(
  request: APIRequestContext,
  { reason, skip = [] }: { reason?: string; skip?: string[] } = {},
): Promise<DeadLetter> {
  return pollFor(
    `a new dead letter of a saga${reason ? ` failed with "${reason}"` : ''}`,
    async () => {
      const params: Record<string, string | number> = { state: 'new', limit: 200 };
      if (reason) params.reason = reason;
      const items = await listDeadLetters(request, params);
      return items.find((d) => d.saga_id && d.original_topic && !skip.includes(d.id));
    },
    { timeout: 120_000, interval: 1_000 },
  );
}

/** Polls the API until the dead letter is in one of `states`. */
export async function waitForDeadLetterState(
  request: APIRequestContext,
  id: string,
  states: string[],
  timeout = 120_000,
): Promise<DeadLetter> {
  return pollFor(
    `dead letter ${id} in state ${states.join(' or ')}`,
    async () => {
      const letter = await deadLetter(request, id);
      return states.includes(letter.state) ? letter : undefined;
    },
    { timeout, interval: 1_000 },
  );
}
