import { expect, test, type Page } from '@playwright/test';
import {
  deadLetterGroups,
  deadLetterPath,
  findNewDeadLetter,
  listDeadLetters,
  OPERATOR,
  pollFor,
  signIn,
  waitForDeadLetterState,
  waitForIngest,
} from './helpers';

/**
 * The dead-letter UI against the demo: its services dead-letter some
 * payment and stock events (Spring DLT headers, three recurring failure
 * reasons), and a demo consumer re-processes re-driven copies, mostly
 * successfully, which lets the held-up saga go on.
 */

const REASON = 'statement timeout';

test.beforeEach(async ({ request }) => {
  await waitForIngest(request, 60_000);
});

/** Retries the dead letter `id` from its row on the saga timeline. */
async function retryFromTimeline(page: Page, sagaId: string, id: string, reason: string): Promise<void> {
  const row = page.locator(`[data-test=timeline-dead-letter][data-id="${id}"]`);
  await expect(row).toHaveAttribute('data-state', 'new', { timeout: 30_000 });
  const form = row.locator('[data-test=retry-failed-step]');
  await form.locator('[data-test=retry-reason]').fill(reason);
  await form.locator('[data-test=retry-submit]').click();
  // The form endpoint answers 303 back to the saga page with a notice.
  await expect(page).toHaveURL(new RegExp(`/sagas/${sagaId}\\?notice=`), { timeout: 30_000 });
}

test('the DLQ page shows depth per topic and per failure group, and the list newest first', async ({ page, request }) => {
  await pollFor('a failure group with waiting dead letters', async () => {
    const groups = await deadLetterGroups(request);
    return groups.some((g) => g.depth > 0) ? true : undefined;
  }, { timeout: 120_000, interval: 1_000 });

  // The overview's DLQ card links here, and to the deepest failure group.
  await page.goto('/');
  const card = page.locator('[data-test=dlq-card]');
  await expect(card.locator('[data-test=dlq-card-link]')).toHaveAttribute('href', '/dlq');
  await expect(card.locator('[data-test=dlq-card-group]')).toHaveAttribute('href', /^\/dlq\?failure_group=/);
  await page.locator('[data-test=nav-dlq]').click();
  await expect(page).toHaveURL(/\/dlq$/);

  const topics = page.locator('[data-test=dlq-topic-row]');
  await expect(topics.first()).toBeVisible();
  const topicNames = await topics.evaluateAll((rows) => rows.map((r) => r.getAttribute('data-topic')));
  for (const name of topicNames) expect(name).toMatch(/\.DLT$/);
  // Every number has its definition on hover.
  await expect(topics.first().locator('[data-test=dlq-topic-depth]')).toHaveAttribute('title', /Depth = /);

  const groups = page.locator('[data-test=dlq-group-row]');
  await expect(groups.first()).toBeVisible();
  const depths = await groups.evaluateAll((rows) => rows.map((r) => Number(r.getAttribute('data-depth'))));
  for (let i = 1; i < depths.length; i++) expect(depths[i], 'deepest group first').toBeLessThanOrEqual(depths[i - 1]);
  // Anonymous readers (the demo's --anonymous-viewer) get no retry controls.
  await expect(page.locator('[data-test=dlq-group-retry]')).toHaveCount(0);
  await expect(page.locator('[data-test=dlq-retry-all]')).toHaveCount(0);

  // The list: newest first, each row with its state.
  const rows = page.locator('[data-test=dlq-row]');
  await expect(rows.first()).toBeVisible();
  const ids = await rows.evaluateAll((els) => els.map((e) => e.getAttribute('data-id') ?? ''));
  const stored = await listDeadLetters(request, { limit: 500 });
  const at = new Map(stored.map((d) => [d.id, Date.parse(d.dead_lettered_at)]));
  const times = ids.filter((id) => at.has(id)).map((id) => at.get(id)!);
  for (let i = 1; i < times.length; i++) expect(times[i]).toBeLessThanOrEqual(times[i - 1]);
  await expect(rows.first().locator('[data-test=dlq-state]')).toHaveAttribute('data-state', /^[a-z_]+$/);

  // "show" filters the list to one failure group; the URL is shareable.
  const first = groups.first();
  const key = (await first.getAttribute('data-group'))!;
  await first.locator('[data-test=dlq-group-show]').click();
  await expect(page).toHaveURL(/[?&]failure_group=/);
  await expect(page.locator('[data-test=dlq-filter-group]')).toContainText(key);
  await expect(rows.first()).toBeVisible();
  const shownGroups = await rows.evaluateAll((els) => els.map((e) => e.getAttribute('data-group')));
  expect(new Set(shownGroups)).toEqual(new Set([key]));
});

test('an operator filters by reason, retries one dead letter and sees it retried, then resolved, on its saga timeline', async ({ page, request }) => {
  test.setTimeout(420_000);
  const letter = await findNewDeadLetter(request, { reason: REASON });

  await signIn(page, OPERATOR, '/dlq');
  await expect(page.locator('[data-test=current-user]')).toHaveAttribute('data-role', 'operator');

  // Filter by reason (and this DLQ topic, new ones only) with the form.
  const form = page.locator('[data-test=dlq-filter-form]');
  await form.locator('[data-test=dlq-filter-reason]').fill(REASON);
  await form.locator('[data-test=dlq-filter-topic]').selectOption(letter.dlq_topic);
  await form.locator('[data-test=dlq-filter-state]').selectOption('new');
  await form.locator('[data-test=dlq-filter-apply]').click();
  await expect(page).toHaveURL(/[?&]reason=statement(\+|%20)timeout/);
  const rows = page.locator('[data-test=dlq-row]');
  await expect(rows.first()).toBeVisible();
  const messages = await rows.locator('[data-test=dlq-message]').allTextContents();
  for (const message of messages) expect(message.toLowerCase()).toContain(REASON);
  const states = await rows.evaluateAll((els) => els.map((e) => e.getAttribute('data-state')));
  expect(new Set(states)).toEqual(new Set(['new']));
  // Operators get the bulk link with the current filter.
  await expect(page.locator('[data-test=dlq-retry-all]')).toHaveAttribute('href', /\/dlq\/bulk-retry\?.*reason=/);

  // Open it: coordinates, exception, stack trace, headers and payload.
  const row = page.locator(`[data-test=dlq-row][data-id="${letter.id}"]`);
  await expect(row).toBeVisible();
  await row.locator('[data-test=dlq-detail-link]').click();
  await expect(page).toHaveURL(new RegExp(`${deadLetterPath(letter.id).replace(/\./g, '\\.')}$`));
  const header = page.locator('[data-test=dlq-header]');
  await expect(header).toHaveAttribute('data-state', 'new');
  await expect(header.locator('[data-test=dlq-exception-message]')).toContainText(REASON);
  await expect(header.locator('[data-test=dlq-original]')).toContainText(letter.original_topic!);
  const stack = page.locator('[data-test=dlq-stacktrace]');
  await expect(stack).toBeVisible();
  await stack.locator('summary').click();
  await expect(stack.locator('pre')).toContainText('at ');
  // Spring's binary headers (Java ints and longs) are shown readable.
  const partitionHeader = page.locator('[data-test=dlq-header-row][data-key="kafka_dlt-original-partition"]');
  await expect(partitionHeader).toHaveAttribute('data-binary', 'true');
  await expect(partitionHeader).toContainText(`= ${letter.original_partition}`);
  await expect(page.locator('[data-test=dlq-payload]')).toBeVisible();
  await expect(page.locator('[data-test=dlq-saga]')).toHaveAttribute('data-saga-id', letter.saga_id!);

  // Retry it: a reason is required; the confirmation says what happens.
  const retryForm = page.locator('[data-test=retry-form]');
  await expect(retryForm).toContainText(`to ${letter.original_topic}`);
  await expect(page.locator('[data-test=discard-form]')).toBeVisible();
  await retryForm.locator('[data-test=retry-reason]').fill('e2e: database statement timeout raised');
  await retryForm.locator('[data-test=retry-submit]').click();
  await expect(page.locator('[data-test=notice]')).toBeVisible({ timeout: 30_000 });
  await expect(page.locator('[data-test=dlq-header]')).toHaveAttribute(
    'data-state',
    /^(retry_requested|retried|resolved|failed_again)$/,
  );
  // No second retry form for a dead letter that is no longer new.
  await expect(page.locator('[data-test=retry-form]')).toHaveCount(0);
  await expect(page.locator('[data-test=dlq-why-not]')).toBeVisible();
  await expect(page.locator('[data-test=dlq-attempt-row]')).toHaveCount(1);

  // Its saga's timeline shows it as a row of its own.
  await page.locator('[data-test=dlq-saga] [data-test=dlq-saga-link]').click();
  await expect(page).toHaveURL(new RegExp(`/sagas/${letter.saga_id}$`));
  let current = letter.id;
  const timelineRow = (id: string) => page.locator(`[data-test=timeline-dead-letter][data-id="${id}"]`);
  await expect(timelineRow(current)).toHaveAttribute('data-state', /^(retry_requested|retried|resolved|failed_again)$/);
  await expect(timelineRow(current).locator('[data-test=timeline-dead-letter-message]')).toContainText(REASON);
  await expect(timelineRow(current).locator('[data-test=retry-failed-step]')).toHaveCount(0);

  // The demo's consumer processes most re-driven copies; when one fails
  // again it comes back as a new dead letter, retried from the timeline.
  for (let attempt = 1; ; attempt++) {
    const settled = await waitForDeadLetterState(request, current, ['resolved', 'failed_again'], 150_000);
    if (settled.state === 'resolved') break;
    expect(attempt, 'a re-driven copy resolves within three tries').toBeLessThan(3);
    const previous = current;
    const copy = await pollFor(`the returned copy of ${previous}`, async () => {
      const items = await listDeadLetters(request, { limit: 200 });
      return items.find((d) => d.retry_of === previous && d.state === 'new');
    }, { timeout: 60_000, interval: 1_000 });
    await page.goto(`/sagas/${letter.saga_id}`);
    await retryFromTimeline(page, letter.saga_id!, copy.id, `e2e: retry again (${attempt})`);
    current = copy.id;
  }
  // Resolved on the timeline: live (the page fetches its dead letters
  // again every few seconds), without a reload.
  await expect(timelineRow(current)).toHaveAttribute('data-state', 'resolved', { timeout: 60_000 });
  await expect(timelineRow(current).locator('[data-test=timeline-dead-letter-state]')).toContainText('resolved');
});

test('an operator bulk-retries a failure group after a count preview and sees the job complete', async ({ page, request }) => {
  test.setTimeout(360_000);
  await pollFor('a failure group with new dead letters', async () => {
    const groups = await deadLetterGroups(request, { state: 'new' });
    return groups.some((g) => g.depth > 0) ? true : undefined;
  }, { timeout: 120_000, interval: 1_000 });
  await signIn(page, OPERATOR, '/dlq');

  const retryLink = page.locator('[data-test=dlq-group-row] [data-test=dlq-group-retry]').first();
  await expect(retryLink).toBeVisible({ timeout: 30_000 });
  const group = await page
    .locator('[data-test=dlq-group-row]', { has: page.locator('[data-test=dlq-group-retry]') })
    .first()
    .getAttribute('data-group');
  await retryLink.click();
  await expect(page).toHaveURL(/\/dlq\/bulk-retry\?.*failure_group=/);

  const JOB_PATH = /^\/dlq\/jobs\/[^/?]+$/;
  let count = 0;
  // The set may change between preview and confirmation (another retry, a
  // late dead letter): the server then refuses and says so.
  for (let attempt = 1; ; attempt++) {
    const shown = page.locator('[data-test=bulk-count]');
    await expect(shown).toBeVisible({ timeout: 30_000 });
    count = Number(await shown.getAttribute('data-count'));
    expect(count).toBeGreaterThan(0);
    await expect(page.locator('[data-test=bulk-filter]')).toHaveAttribute('data-filter', /failure_group=/);
    await expect(page.locator('[data-test=bulk-filter-field]')).toHaveValue(/failure_group=/);
    await expect(page.locator('[data-test=bulk-expected-count]')).toHaveValue(String(count));
    const perTopic = await page
      .locator('[data-test=bulk-topic-row]')
      .evaluateAll((rows) => rows.map((r) => Number(r.getAttribute('data-count'))));
    expect(perTopic.reduce((a, b) => a + b, 0)).toBe(count);
    const sample = await page.locator('[data-test=bulk-sample-row]').count();
    expect(sample).toBeGreaterThan(0);
    expect(sample).toBeLessThanOrEqual(count);
    const submit = page.locator('[data-test=bulk-submit]');
    await expect(submit).toHaveText(new RegExp(`Retry ${count.toLocaleString('en-US')} dead letters?`));

    await page.locator('[data-test=bulk-reason]').fill('e2e: bulk retry of one failure group');
    await page.locator('[data-test=bulk-throttle]').fill('50');
    await submit.click();
    await page.waitForURL((url) => JOB_PATH.test(url.pathname) || url.searchParams.has('error'), { timeout: 30_000 });
    if (JOB_PATH.test(new URL(page.url()).pathname)) break;
    await expect(page.locator('[data-test=action-error]')).toBeVisible();
    expect(attempt, 'the bulk retry was accepted within three tries').toBeLessThan(3);
    await page.goto(`/dlq/bulk-retry?failure_group=${encodeURIComponent(group!)}`);
  }

  // The job page refreshes itself while the job runs.
  const job = page.locator('[data-test=job]');
  await expect(job).toBeVisible();
  await expect(job.locator('[data-test=job-reason]')).toHaveText('e2e: bulk retry of one failure group');
  await expect(job.locator('[data-test=job-actor]')).toHaveText(OPERATOR.name);
  await expect(job.locator('[data-test=job-total]')).toHaveText(String(count));
  await expect(job.locator('[data-test=job-filter-link]')).toHaveAttribute('href', /failure_group=/);
  await expect(job).toHaveAttribute('data-state', 'completed', { timeout: 180_000 });
  const figure = async (name: string) => Number(await job.locator(`[data-test=job-${name}]`).textContent());
  expect((await figure('produced')) + (await figure('failed')) + (await figure('skipped'))).toBe(count);
  await expect(page.locator('[data-test=job-cancel]')).toHaveCount(0);

  // It is listed among the recent bulk retries.
  const jobId = new URL(page.url()).pathname.split('/').pop()!;
  await page.goto('/dlq');
  await expect(page.locator(`[data-test=dlq-job-row][data-job-id="${jobId}"]`)).toHaveAttribute('data-state', 'completed');
});

test('a bulk retry that matches nothing offers no button', async ({ page }) => {
  await signIn(page, OPERATOR, '/dlq/bulk-retry?reason=no-such-failure-e2e');
  await expect(page.locator('[data-test=bulk-count]')).toHaveAttribute('data-count', '0');
  await expect(page.locator('[data-test=bulk-nothing]')).toBeVisible();
  await expect(page.locator('[data-test=bulk-form]')).toHaveCount(0);
  await expect(page.locator('[data-test=bulk-submit]')).toHaveCount(0);
});

test.describe('without JavaScript', () => {
  test.use({ javaScriptEnabled: false });

  test('the DLQ list, its filters and a dead letter are readable', async ({ page, request }) => {
    test.setTimeout(120_000);
    // Any dead letter will do (the bulk test may have retried every new
    // one of a group); filter by the start of its own message.
    const letter = await pollFor('a dead letter with an exception message', async () => {
      const items = await listDeadLetters(request, { limit: 50 });
      return items.find((d) => (d.exception_message ?? '').length >= 24);
    }, { timeout: 90_000, interval: 1_000 });
    const reason = letter.exception_message!.slice(0, 24);
    await page.goto('/dlq');
    await expect(page.locator('[data-test=dlq-group-row]').first()).toBeVisible();
    const form = page.locator('[data-test=dlq-filter-form]');
    await form.locator('[data-test=dlq-filter-reason]').fill(reason);
    await form.locator('[data-test=dlq-filter-apply]').click();
    await expect(page).toHaveURL(/[?&]reason=/);
    const rows = page.locator('[data-test=dlq-row]');
    await expect(rows.first()).toBeVisible();
    for (const message of await rows.locator('[data-test=dlq-message]').allTextContents()) {
      expect(message.toLowerCase()).toContain(reason.toLowerCase());
    }

    await page.goto(deadLetterPath(letter.id));
    await expect(page.locator('[data-test=dlq-header]')).toHaveAttribute('data-id', letter.id);
    await expect(page.locator('[data-test=dlq-exception-message]')).toContainText(reason);
    // The stack trace is folded and opens without JavaScript.
    const stack = page.locator('[data-test=dlq-stacktrace]');
    await expect(stack.locator('pre')).toBeHidden();
    await stack.locator('summary').click();
    await expect(stack.locator('pre')).toBeVisible();

    const missing = await page.goto('/dlq/messages/no.such.DLT/0/1');
    expect(missing?.status()).toBe(404);
    await expect(page.locator('[data-test=dlq-not-found]')).toBeVisible();
  });
});
