import path from 'node:path';
import { defineConfig } from '@playwright/test';

/**
 * End-to-end tests of the sagascope UI against `sagascope demo`: an
 * in-process Kafka mock cluster, a traffic simulator and SQLite. Build first
 * (`cargo leptos build --release` from the repository root, as README
 * command 1 and CI do), then `npx playwright test` here. `SAGASCOPE_BIN`
 * selects another binary (e.g. `../target/debug/sagascope` after a debug
 * `cargo leptos build`).
 */
const PORT = 3007;
const BASE_URL = `http://127.0.0.1:${PORT}`;
/** A second demo without the example rules (`without-rules.spec.ts`). */
const WITHOUT_RULES_PORT = 3008;
const BIN = process.env.SAGASCOPE_BIN ?? '../target/release/sagascope';
const SITE_ROOT = path.resolve(__dirname, '..', 'target', 'site');

export default defineConfig({
  testDir: './tests',
  fullyParallel: false,
  workers: 1,
  retries: process.env.CI ? 1 : 0,
  forbidOnly: !!process.env.CI,
  reporter: 'list',
  timeout: 60_000,
  expect: { timeout: 10_000 },
  use: {
    baseURL: BASE_URL,
    trace: 'retain-on-failure',
    launchOptions: {
      executablePath: '/usr/bin/chromium',
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    },
  },
  webServer: [
    {
      command: `${BIN} demo --listen 127.0.0.1:${PORT} --database-path ../target/e2e/demo.db --rate 20 --history 60 --poison-ratio 0.05 --anonymous-viewer --operator-password operator-e2e-password --viewer-password viewer-e2e-password --otlp-token e2e-otlp-token`,
      env: { LEPTOS_SITE_ROOT: SITE_ROOT },
      url: `${BASE_URL}/healthz`,
      timeout: 120_000,
      reuseExistingServer: !process.env.CI,
      stdout: 'pipe',
      stderr: 'pipe',
    },
    {
      // The same demo with no rules file: what the name defaults make of
      // the simulated traffic (issue 13).
      command: `${BIN} demo --listen 127.0.0.1:${WITHOUT_RULES_PORT} --without-rules --database-path ../target/e2e/demo-without-rules.db --rate 20 --history 60 --poison-ratio 0.05 --anonymous-viewer --operator-password operator-e2e-password --viewer-password viewer-e2e-password --otlp-token e2e-otlp-token`,
      env: { LEPTOS_SITE_ROOT: SITE_ROOT },
      url: `http://127.0.0.1:${WITHOUT_RULES_PORT}/healthz`,
      timeout: 120_000,
      reuseExistingServer: !process.env.CI,
      stdout: 'pipe',
      stderr: 'pipe',
    },
  ],
});
