// The smoke run of README command 1 (`scripts/demo.sh --smoke`): against a
// demo that scripts/demo.sh has just built and started, check what a
// newcomer's first minute needs and exit non-zero with the reason when
// anything is missing:
//   1. /healthz answers and /readyz says ready (200);
//   2. the viewer signs in through the login page in Chromium;
//   3. the API lists sagas of every simulated type;
//   4. the saga list page hydrates (its live indicator turns "live") with no
//      page error;
//   5. no alert fires (a fresh demo must not greet anyone with false alarms).
//
// Usage: node end2end/smoke/demo-smoke.mjs BASE_URL VIEWER_PASSWORD
import { chromium } from '@playwright/test';

const [baseUrl, viewerPassword] = process.argv.slice(2);
if (!baseUrl || !viewerPassword) {
  console.error('usage: demo-smoke.mjs BASE_URL VIEWER_PASSWORD');
  process.exit(2);
}
// The demo's simulated saga types (crates/simulator/src/saga_plans, named by
// the demo's rules file).
const SAGA_TYPES = ['order', 'chat_message', 'scan_reward', 'order_choreography'];
const started = Date.now();
const elapsed = () => `${((Date.now() - started) / 1000).toFixed(1)} s`;

function fail(reason) {
  console.error(`smoke: FAILED after ${elapsed()}: ${reason}`);
  process.exit(1);
}

async function poll(what, timeoutMs, check) {
  const deadline = Date.now() + timeoutMs;
  let last = 'no answer yet';
  while (Date.now() < deadline) {
    try {
      const result = await check();
      if (result.ok) return result.value;
      last = result.why;
    } catch (error) {
      last = String(error?.message ?? error);
    }
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
  fail(`${what}: ${last}`);
}

await poll('the demo did not answer /healthz', 120_000, async () => {
  const response = await fetch(`${baseUrl}/healthz`);
  return { ok: response.ok, why: `/healthz answered ${response.status}` };
});
const readiness = await poll('/readyz did not report ready', 60_000, async () => {
  const response = await fetch(`${baseUrl}/readyz`);
  const body = await response.text();
  return { ok: response.status === 200, value: body, why: `/readyz ${response.status}: ${body}` };
});
console.log(`smoke: ready after ${elapsed()}: ${readiness}`);

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run'],
});
try {
  const page = await browser.newPage();
  const pageErrors = [];
  page.on('pageerror', (error) => pageErrors.push(String(error)));

  await page.goto(`${baseUrl}/login?next=${encodeURIComponent('/sagas')}`);
  await page.locator('[data-test=login-name]').fill('viewer');
  await page.locator('[data-test=login-password]').fill(viewerPassword);
  await page.locator('[data-test=login-submit]').click();
  await page.waitForURL(/\/sagas/, { timeout: 30_000 }).catch(() => fail(`sign-in did not reach /sagas (at ${page.url()})`));

  for (const sagaType of SAGA_TYPES) {
    const count = await poll(`no ${sagaType} saga listed by the API`, 60_000, async () => {
      const response = await page.request.get(`${baseUrl}/api/v1/sagas?saga_type=${sagaType}&limit=5`);
      if (!response.ok()) return { ok: false, why: `/api/v1/sagas answered ${response.status()}` };
      const body = await response.json();
      const sagas = Array.isArray(body) ? body : body.sagas ?? body.items ?? [];
      return { ok: sagas.length > 0, value: sagas.length, why: `0 ${sagaType} sagas` };
    });
    console.log(`smoke: ${sagaType}: ${count}+ sagas listed (${elapsed()})`);
  }

  const indicator = page.locator('[data-test=live-indicator]');
  await indicator
    .and(page.locator('[data-state=live]'))
    .waitFor({ timeout: 30_000 })
    .catch(async () => fail(`the saga list did not hydrate: live indicator is ${await indicator.getAttribute('data-state')}`));
  const rows = await page.locator('[data-test=saga-row]').count();
  if (rows === 0) fail('the hydrated saga list shows no rows');
  if (pageErrors.length > 0) fail(`page errors: ${pageErrors.join(' | ')}`);
  console.log(`smoke: /sagas hydrated and live with ${rows} rows (${elapsed()})`);

  const alerts = await page.request.get(`${baseUrl}/api/v1/alerts`);
  if (!alerts.ok()) fail(`/api/v1/alerts answered ${alerts.status()}`);
  const body = await alerts.json();
  const firing = Array.isArray(body) ? body : body.alerts ?? [];
  if (firing.length > 0) {
    fail(`alerts firing on a fresh demo: ${firing.map((a) => a.message ?? JSON.stringify(a)).join(' | ')}`);
  }
  console.log(`smoke: no alert firing (${elapsed()})`);
} finally {
  await browser.close();
}
console.log(`smoke: passed in ${elapsed()}`);
