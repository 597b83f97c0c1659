import { expect, test, type APIRequestContext } from '@playwright/test';
import { pollFor, type SagaSummary } from './helpers';

/**
 * Issue 16: every recent saga type's flow is learned from its latest
 * instances (relearned every 10 s) and drawn on `/types/{saga_type}`. In
 * the demo without rules (port 3008) the choreographed `Order` saga
 * declares no end: its learned end events end it, and a running one says
 * what it waits on. In the rules demo (port 3007) the types declare their
 * ends; the flow is drawn for reference.
 */
const WITHOUT_RULES = 'http://127.0.0.1:3008';
const WITH_RULES = 'http://127.0.0.1:3007';
const CHOREOGRAPHY = 'Order';

// A fresh demo learns its first flows within seconds; end events need a
// few settled instances (each wait below is at most 90 s).
test.describe.configure({ timeout: 200_000 });

interface FlowNode {
  name: string;
  kind: 'forward' | 'failure' | 'compensation';
  instances: number;
  terminal: boolean;
  layer: number;
}

interface FlowEdge {
  from: string;
  to: string;
  count: number;
  gap: { p50_ms: number | null; p99_ms: number | null };
}

interface FlowModel {
  saga_type: string;
  declared: boolean;
  instances: number;
  nodes: FlowNode[];
  edges: FlowEdge[];
  quiet_after_ms: number | null;
}

interface Summary extends SagaSummary {
  last_node?: string | null;
}

/** The learned flow of `sagaType`, or undefined while none is learned (404). */
async function flowOf(request: APIRequestContext, base: string, sagaType: string): Promise<FlowModel | undefined> {
  const response = await request.get(`${base}/api/v1/types/${encodeURIComponent(sagaType)}/flow`);
  if (response.status() === 404) return undefined;
  expect(response.ok(), `GET ${base}/api/v1/types/${sagaType}/flow: ${response.status()}`).toBeTruthy();
  return (await response.json()) as FlowModel;
}

/** A learned `Order` flow that has learned its end events. */
async function orderFlow(request: APIRequestContext): Promise<FlowModel> {
  return pollFor(
    `a learned ${CHOREOGRAPHY} flow with end events`,
    async () => {
      const model = await flowOf(request, WITHOUT_RULES, CHOREOGRAPHY);
      return model && model.edges.length > 0 && model.nodes.some((n) => n.terminal) ? model : undefined;
    },
    { timeout: 90_000, interval: 1_000 },
  );
}

/** What `FlowModel::waiting_on` waits for after `last`: its most frequent hop out. */
function usualNext(model: FlowModel, last: string): FlowEdge | undefined {
  if (model.nodes.find((n) => n.name === last)?.terminal) return undefined;
  return model.edges
    .filter((e) => e.from === last && e.to !== last)
    .sort((a, b) => b.count - a.count || a.to.localeCompare(b.to))[0];
}

test('the learned flow of an undeclared type: diagram, end events and hops', async ({ page, request }) => {
  const model = await orderFlow(request);
  expect(model.declared).toBe(false);

  const response = await page.goto(`${WITHOUT_RULES}/types/${CHOREOGRAPHY}`);
  expect(response?.status()).toBe(200);
  const header = page.locator('[data-test=type-header]');
  await expect(header).toHaveAttribute('data-declared', 'false');
  await expect(header.locator('[data-test=flow-ending]')).toContainText('do not declare an end');
  await expect(header.locator('[data-test=flow-learned]')).toContainText('Learned from');
  await expect(header.locator('[data-test=type-sagas-link]')).toHaveAttribute('href', `/sagas?saga_type=${CHOREOGRAPHY}`);

  const diagram = page.locator('[data-test=flow-diagram]');
  await expect(diagram).toBeVisible();
  const nodes = diagram.locator('[data-test=flow-node]');
  expect(await nodes.count()).toBeGreaterThanOrEqual(2);
  // The model is relearned every 10 s: the busiest event stays drawn, and
  // some event is drawn as an end.
  const busiest = [...model.nodes].sort((a, b) => b.instances - a.instances)[0];
  await expect(diagram.locator(`[data-test=flow-node][data-node="${busiest.name}"]`)).toHaveCount(1);
  await expect(diagram.locator('[data-test=flow-node][data-terminal=true]').first()).toBeVisible();
  expect(await diagram.locator('[data-test=flow-edge]').count()).toBeGreaterThan(0);

  const hops = page.locator('[data-test=flow-hops]');
  await expect(hops).toBeVisible();
  expect(await hops.locator('tbody tr').count()).toBeGreaterThan(0);
  await expect(page.locator('[data-test=flow-nodes] tbody tr').first()).toBeVisible();
});

test('the saga list and a saga link to their type', async ({ page, request }) => {
  await orderFlow(request);
  await page.goto(`${WITHOUT_RULES}/sagas?saga_type=${CHOREOGRAPHY}`);
  const link = page.locator('[data-test=saga-row] [data-test=saga-type-link]').first();
  await expect(link).toHaveAttribute('href', `/types/${CHOREOGRAPHY}`);
  await link.click();
  await expect(page).toHaveURL(new RegExp(`/types/${CHOREOGRAPHY}$`));
  await expect(page.locator('[data-test=flow-diagram]')).toBeVisible();
});

test('a type without a learned flow says so', async ({ page }) => {
  const response = await page.goto(`${WITHOUT_RULES}/types/NoSuchType-${Date.now()}`);
  expect(response?.status()).toBe(404);
  await expect(page.locator('[data-test=flow-empty]')).toContainText('No flow learned for NoSuchType-');
});

test('a running choreography says what it waits on and what usually follows', async ({ page, request }) => {
  await orderFlow(request);
  // Choreographies finish within seconds: take running ones until one is
  // still running when its page renders.
  const tried = new Set<string>();
  const seen = await pollFor(
    `a running ${CHOREOGRAPHY} saga whose page shows what it waits on`,
    async () => {
      const model = await flowOf(request, WITHOUT_RULES, CHOREOGRAPHY);
      if (!model) return undefined;
      const response = await request.get(`${WITHOUT_RULES}/api/v1/sagas`, {
        params: { saga_type: CHOREOGRAPHY, status: 'running', limit: 50 },
      });
      expect(response.ok()).toBeTruthy();
      const running = ((await response.json()) as { items: Summary[] }).items;
      const saga = running.find((s) => !tried.has(s.saga_id) && s.last_node && usualNext(model, s.last_node));
      if (!saga) return undefined;
      tried.add(saga.saga_id);
      await page.goto(`${WITHOUT_RULES}/sagas/${encodeURIComponent(saga.saga_id)}`);
      const status = await page.locator('[data-test=saga-header] [data-test=saga-status]').getAttribute('data-status');
      const waiting = page.locator('[data-test=saga-header] [data-test=waiting-on]');
      if (!['running', 'compensating'].includes(status ?? '') || (await waiting.count()) === 0) return undefined;
      // The saga may end while its page is open (the live update then
      // removes the note): short reads, and another saga if it went.
      try {
        return {
          text: (await waiting.textContent({ timeout: 2_000 })) ?? '',
          overdue: await waiting.getAttribute('data-overdue', { timeout: 2_000 }),
          expected: await page.locator('[data-test=timeline] [data-test=expected-step]').count(),
        };
      } catch {
        return undefined;
      }
    },
    { timeout: 90_000, interval: 500 },
  );
  expect(seen.text).toMatch(/Waiting on \S+ for \d/);
  expect(['true', 'false']).toContain(seen.overdue);
  // The usual rest of the path starts with the awaited event.
  expect(seen.expected).toBeGreaterThan(0);
});

test('the rules demo draws the flow of a declared type', async ({ page, request }) => {
  const model = await pollFor(
    'a learned flow in the rules demo',
    async () => {
      const response = await request.get(`${WITH_RULES}/api/v1/types`);
      expect(response.ok(), `GET ${WITH_RULES}/api/v1/types: ${response.status()}`).toBeTruthy();
      const models = (await response.json()) as FlowModel[];
      return models.find((m) => m.nodes.length > 1 && m.edges.length > 0);
    },
    { timeout: 60_000, interval: 1_000 },
  );
  await page.goto(`${WITH_RULES}/types/${encodeURIComponent(model.saga_type)}`);
  await expect(page.locator('[data-test=type-header]')).toHaveAttribute('data-declared', String(model.declared));
  const diagram = page.locator('[data-test=flow-diagram]');
  await expect(diagram).toBeVisible();
  expect(await diagram.locator('[data-test=flow-node]').count()).toBeGreaterThan(1);
  expect(await page.locator('[data-test=flow-hops] tbody tr').count()).toBeGreaterThan(0);
});

test('a choreography that reached a learned end event reads finished within 5 s', async ({ request }) => {
  // A type whose event names do not end it (the scan-reward choreography:
  // ProfileUpdated is no `{Type}Completed`; the order choreography's
  // OrderConfirmed is, so its names end it without the flow): some of its
  // sagas were ended by the learned flow, at a learned end event.
  const found = await pollFor(
    'an undeclared type with a saga ended at a learned end event',
    async () => {
      const response = await request.get(`${WITHOUT_RULES}/api/v1/types`);
      expect(response.ok()).toBeTruthy();
      const models = ((await response.json()) as FlowModel[]).filter(
        (m) => !m.declared && m.nodes.some((n) => n.terminal),
      );
      for (const model of models) {
        const sagas = await request.get(`${WITHOUT_RULES}/api/v1/sagas`, {
          params: { saga_type: model.saga_type, status: 'completed,compensated,failed', limit: 200 },
        });
        expect(sagas.ok()).toBeTruthy();
        const items = ((await sagas.json()) as { items: (Summary & { inferred_from?: string | null })[] }).items;
        const ended = items.find((s) => s.inferred_from === 'learned_end');
        if (ended) return { model, ended };
      }
      return undefined;
    },
    { timeout: 90_000, interval: 2_000 },
  );
  const ends = new Set(found.model.nodes.filter((n) => n.terminal).map((n) => n.name));
  expect(found.ended.status_inferred).toBe(true);
  expect(found.ended.ended_at).not.toBeNull();
  expect(ends.has(found.ended.last_node ?? '')).toBe(true);
  // …and no running one of that type has stopped at an end event for
  // longer than 5 s (the sweep runs every 2 s; the rest is ingest delay).
  // Polled briefly: a model that has just learned a new end event is
  // applied by the next sweep.
  const late = await pollFor(
    `no running ${found.model.saga_type} saga stopped at an end event for over 5 s`,
    async () => {
      const response = await request.get(`${WITHOUT_RULES}/api/v1/sagas`, {
        params: { saga_type: found.model.saga_type, status: 'running,compensating', limit: 200 },
      });
      expect(response.ok()).toBeTruthy();
      const now = Date.now();
      const stuck = ((await response.json()) as { items: Summary[] }).items.filter(
        (s) => ends.has(s.last_node ?? '') && now - Date.parse(s.last_event_at) > 5_000,
      );
      return stuck.length === 0 ? [] : undefined;
    },
    { timeout: 10_000, interval: 1_000 },
  );
  expect(late).toEqual([]);
});
