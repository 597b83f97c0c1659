import { expect, test } from '@playwright/test';
import { waitForLive } from './helpers';

test('the theme toggle switches between light and dark and is remembered', async ({ page }) => {
  await page.emulateMedia({ colorScheme: 'light' });
  await page.goto('/sagas');
  await waitForLive(page); // hydrated: the toggle has its handler

  const html = page.locator('html');
  // No stored choice: the page follows the OS (light here).
  const initial = (await html.getAttribute('data-theme')) ?? 'light';
  const other = initial === 'dark' ? 'light' : 'dark';
  const toggle = page.locator('[data-test=theme-toggle]');

  await toggle.click();
  await expect(html).toHaveAttribute('data-theme', other);
  await toggle.click();
  await expect(html).toHaveAttribute('data-theme', initial);
  await toggle.click();
  await expect(html).toHaveAttribute('data-theme', other);

  // The choice survives a reload (applied before first paint).
  await page.reload();
  await expect(html).toHaveAttribute('data-theme', other);

  // The two themes really differ on screen.
  const background = () => page.evaluate(() => getComputedStyle(document.body).backgroundColor);
  const before = await background();
  await waitForLive(page);
  await toggle.click();
  await expect(html).toHaveAttribute('data-theme', initial);
  await expect.poll(background).not.toBe(before);
});
