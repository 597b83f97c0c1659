// Screenshots of pages of a running sagascope, in the dark and the light
// theme, to look at what was built as a user would:
//   node end2end/smoke/shoot.mjs http://127.0.0.1:3000 /tmp/shots / /sagas
import { chromium } from '@playwright/test';
const [base, out, ...paths] = process.argv.slice(2);
const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--headless', '--no-sandbox', '--disable-gpu'] });
for (const theme of ['dark', 'light']) {
  const page = await browser.newPage({ viewport: { width: 1440, height: 1000 }, colorScheme: theme });
  for (const p of paths) {
    await page.goto(base + p);
    await page.waitForTimeout(2500);
    await page.screenshot({ path: `${out}/${p.replace(/[^a-z0-9]/gi, '_') || 'root'}-${theme}.png`, fullPage: false });
  }
  await page.close();
}
await browser.close();
