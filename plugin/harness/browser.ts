/**
 * The browser side of the harness tests: Debian's Chromium through playwright-core, a page of the harness
 * opened as a signed-in user with every page error, console error and failed load collected, screenshots,
 * and requests made from the page as a script there could make them. Shared by plugin.test.ts (every flow, on
 * the plugin's own Grafana packages) and grafana-oldest.test.ts (a subset, on the oldest Grafana claimed).
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { chromium, type Browser, type Locator, type Page } from 'playwright-core';
import { projectRoot } from '../../core/config.ts';
import { userCookie, type Harness, type HarnessUser } from './server.ts';

/** Where the screenshots go. */
export const SHOTS = path.join(projectRoot, 'test-results', 'plugin');

/** Debian's Chromium, headless, with nothing that reaches out on its own. */
export function launchChromium(): Promise<Browser> {
  fs.mkdirSync(SHOTS, { recursive: true });
  return chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}

export interface Opened {
  page: Page;
  /** Page errors, console errors and failed loads seen so far (fonts excepted: Grafana's are not installed here). */
  problems: string[];
  close(): Promise<void>;
}

/** A fresh browser context signed in as `user`, on the harness page `name`, once the plugin has rendered. */
export async function openPage(browser: Browser, harness: Harness, user: HarnessUser, name: string, theme: 'light' | 'dark' = 'dark'): Promise<Opened> {
  const context = await browser.newContext({ viewport: { width: 1440, height: 1000 }, acceptDownloads: true, locale: 'en-US', timezoneId: 'UTC' });
  await context.addCookies([{ name: 'harness_user', value: userCookie(user), url: harness.url }]);
  const page = await context.newPage();
  page.setDefaultTimeout(15_000);
  // Loading the bundled page (React, @grafana/ui and the plugin) takes Chromium over 15 s when the machine is busy.
  page.setDefaultNavigationTimeout(90_000);
  const problems: string[] = [];
  page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
  page.on('console', (message) => {
    if (message.type() === 'error' && !message.text().startsWith('Failed to load resource')) problems.push(`console error: ${message.text()}`);
  });
  page.on('response', (response) => {
    const deliberate = response.request().headers()['x-test-probe'] !== undefined;
    if (!deliberate && ((response.status() === 404 && !response.url().includes('/public/fonts/')) || response.status() >= 500)) {
      problems.push(`HTTP ${response.status()} ${response.request().method()} ${response.url()}`);
    }
  });
  await page.goto(`${harness.url}/?page=${name}&theme=${theme}`);
  type State = { state: string; error?: string } | undefined;
  await page.waitForFunction(() => (globalThis as unknown as { __harness?: { state: string } }).__harness?.state !== 'loading');
  const state = await page.evaluate(() => (globalThis as unknown as { __harness?: State }).__harness);
  assert.equal(state?.state, 'ready', `the harness did not render ${name}: ${state?.error}`);
  return {
    page,
    problems,
    async close() {
      await context.close();
      assert.deepEqual(problems, [], `problems on ${name} as ${user.login}`);
    },
  };
}

/** Full-page screenshot, with CSS transitions (buttons fading to enabled, focus rings) run to their end. */
export const shot = (page: Page, name: string) => page.screenshot({ path: path.join(SHOTS, `${name}.png`), fullPage: true, animations: 'disabled' });

/** Picks a company in the Bulk rating page's Combobox by typing part of its name. */
export async function chooseCompany(page: Page, search: string, label: string) {
  const input = page.locator('#bulk-company');
  await input.click();
  await input.fill(search);
  await page.getByRole('option', { name: label }).click();
  await page.getByTestId('bulk-allowance').waitFor();
}

/**
 * A same-origin request from the page, as any script there could make it (the session cookie goes along).
 * Marked X-Test-Probe so that the error answers it expects are not counted as the page's problems.
 */
export async function fromPage(page: Page, method: string, url: string, body?: unknown) {
  return page.evaluate(
    async ([m, u, b]) => {
      const res = await fetch(u, { method: m, headers: { 'content-type': 'application/json', 'x-test-probe': '1' }, body: b === undefined ? undefined : JSON.stringify(b) });
      const text = await res.text();
      let json: unknown = null;
      try {
        json = JSON.parse(text);
      } catch {
        json = text;
      }
      return { status: res.status, body: json as Record<string, unknown> };
    },
    [method, url, body] as const,
  );
}

export const rowWith = (table: Locator, text: string) => table.getByRole('row').filter({ hasText: text });
