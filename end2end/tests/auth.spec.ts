import { expect, test } from '@playwright/test';
import {
  csrfToken,
  deadLetter,
  deadLetterPath,
  findNewDeadLetter,
  OPERATOR,
  signIn,
  VIEWER,
  waitForIngest,
} from './helpers';

/**
 * Sign-in, roles and CSRF around the dead-letter actions. The demo runs
 * with --anonymous-viewer (reading needs no sign-in) and the users
 * `operator` and `viewer` (passwords from playwright.config.ts).
 */

test.beforeEach(async ({ request }) => {
  await waitForIngest(request, 60_000);
});

test('a wrong password is refused with a message; an operator signs in and out', async ({ page }) => {
  await page.goto('/login?next=/dlq');
  await page.locator('[data-test=login-name]').fill(OPERATOR.name);
  await page.locator('[data-test=login-password]').fill('not-the-password');
  await page.locator('[data-test=login-submit]').click();
  await expect(page.locator('[data-test=login-error]')).toBeVisible();
  await expect(page.locator('[data-test=current-user]')).toHaveCount(0);

  await signIn(page, OPERATOR, '/dlq');
  await expect(page).toHaveURL(/\/dlq$/);
  await expect(page.locator('[data-test=current-user]')).toHaveAttribute('data-role', 'operator');
  await page.locator('[data-test=logout]').click();
  await expect(page.locator('[data-test=login-link]')).toBeVisible();
});

test('a viewer sees no retry or discard controls, and the API refuses them', async ({ page, request }) => {
  test.setTimeout(180_000);
  const letter = await findNewDeadLetter(request);
  await signIn(page, VIEWER, '/dlq');
  await expect(page.locator('[data-test=current-user]')).toHaveAttribute('data-role', 'viewer');

  // The list and the groups: readable, no retry links.
  await expect(page.locator('[data-test=dlq-row]').first()).toBeVisible();
  await expect(page.locator('[data-test=dlq-group-row]').first()).toBeVisible();
  await expect(page.locator('[data-test=dlq-group-retry]')).toHaveCount(0);
  await expect(page.locator('[data-test=dlq-retry-all]')).toHaveCount(0);

  // The dead letter's page: everything but the actions.
  await page.goto(deadLetterPath(letter.id));
  await expect(page.locator('[data-test=dlq-header]')).toHaveAttribute('data-state', 'new');
  await expect(page.locator('[data-test=dlq-payload]')).toBeVisible();
  await expect(page.locator('[data-test=dlq-actions]')).toHaveCount(0);
  await expect(page.locator('[data-test=retry-form]')).toHaveCount(0);
  await expect(page.locator('[data-test=discard-form]')).toHaveCount(0);

  // The saga timeline shows the dead letter, without "Retry failed step".
  await page.goto(`/sagas/${letter.saga_id}`);
  const row = page.locator(`[data-test=timeline-dead-letter][data-id="${letter.id}"]`);
  await expect(row).toBeVisible();
  await expect(row).toHaveAttribute('data-state', 'new');
  await expect(page.locator('[data-test=retry-failed-step]')).toHaveCount(0);

  // The bulk page answers 403 without a form.
  const bulk = await page.goto(`/dlq/bulk-retry?failure_group=${encodeURIComponent(letter.failure_group)}`);
  expect(bulk?.status()).toBe(403);
  await expect(page.locator('[data-test=bulk-forbidden]')).toBeVisible();
  await expect(page.locator('[data-test=bulk-form]')).toHaveCount(0);
  await expect(page.locator('[data-test=bulk-submit]')).toHaveCount(0);

  // The API refuses on the role, even with a valid CSRF token from the
  // same origin: 403 with a JSON error.
  await page.goto('/dlq');
  const token = await csrfToken(page);
  const origin = new URL(page.url()).origin;
  const refused = await page.request.post(`/api/v1/dlq/${encodeURIComponent(letter.id)}/retry`, {
    headers: { 'x-csrf-token': token, origin },
    data: { reason: 'a viewer tries', idempotency_key: `viewer-${Date.now()}` },
    maxRedirects: 0,
  });
  expect(refused.status()).toBe(403);
  expect(refused.headers()['content-type']).toContain('application/json');
  const body = (await refused.json()) as { error?: unknown };
  expect(typeof body.error).toBe('string');
  expect(String(body.error)).toMatch(/operator/i);

  const discard = await page.request.post(`/api/v1/dlq/${encodeURIComponent(letter.id)}/discard`, {
    headers: { 'x-csrf-token': token, origin },
    data: { reason: 'a viewer tries' },
    maxRedirects: 0,
  });
  expect(discard.status()).toBe(403);

  expect((await deadLetter(request, letter.id)).state).toBe('new');
});

test('a forged cross-site POST is refused and the dead letter stays new', async ({ page, request }) => {
  test.setTimeout(180_000);
  const letter = await findNewDeadLetter(request);
  // An operator's session cookie is in the browser…
  await signIn(page, OPERATOR, '/dlq');
  const id = encodeURIComponent(letter.id);
  const evil = 'https://evil.example';

  // …and another site makes it post the retry form: no CSRF token,
  // a foreign Origin.
  const forgedForm = await page.request.post('/dlq/actions/retry', {
    headers: { origin: evil },
    form: { id: letter.id, reason: 'forged', idempotency_key: `forged-form-${Date.now()}`, return_to: '/dlq' },
    maxRedirects: 0,
  });
  expect(forgedForm.status()).toBe(403);

  // The same against the JSON API.
  const forgedApi = await page.request.post(`/api/v1/dlq/${id}/retry`, {
    headers: { origin: evil },
    data: { reason: 'forged', idempotency_key: `forged-api-${Date.now()}` },
    maxRedirects: 0,
  });
  expect(forgedApi.status()).toBe(403);
  expect(typeof ((await forgedApi.json()) as { error?: unknown }).error).toBe('string');

  // A stolen token does not help from another origin…
  const token = await csrfToken(page);
  const foreignWithToken = await page.request.post('/dlq/actions/retry', {
    headers: { origin: evil },
    form: { csrf_token: token, id: letter.id, reason: 'forged', idempotency_key: `forged-token-${Date.now()}`, return_to: '/dlq' },
    maxRedirects: 0,
  });
  expect(foreignWithToken.status()).toBe(403);

  // …and the same origin without the token is refused too.
  const origin = new URL(page.url()).origin;
  const noToken = await page.request.post(`/api/v1/dlq/${id}/retry`, {
    headers: { origin },
    data: { reason: 'no token', idempotency_key: `no-token-${Date.now()}` },
    maxRedirects: 0,
  });
  expect(noToken.status()).toBe(403);

  expect((await deadLetter(request, letter.id)).state).toBe('new');
  // The page still offers the operator the (real) retry form.
  await page.goto(deadLetterPath(letter.id));
  await expect(page.locator('[data-test=dlq-header]')).toHaveAttribute('data-state', 'new');
  await expect(page.locator('[data-test=retry-form]')).toBeVisible();
});
