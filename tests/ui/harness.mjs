// What the browser tests stand on: the real revwallet binary (built with cargo, started on a free port with its
// own SQLite file), Debian's Chromium driven over CDP by playwright-core (never a downloaded browser), axe-core
// injected from node_modules, and the helpers that submit a form and report what the server answered, make API
// keys through the admin API and sign in to the web app with them.
// Written for Node 18 (Debian 12's nodejs) and later.

import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

import { chromium } from 'playwright-core';

const require = createRequire(import.meta.url);

export const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
export const SCREENSHOTS = process.env.UI_SCREENSHOT_DIR || join(REPO, 'docs', 'screenshots');
const AXE = require.resolve('axe-core/axe.min.js');

// The flags the project runs Chromium with: headless, no sandbox (CI runs as root in a container), and none of
// the background traffic (updates, sync, safe-browsing lists) a test machine must not make.
export const CHROMIUM_FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
];

/** The admin key the test server is started with (`REVWALLET_BOOTSTRAP_ADMIN_KEY`); other keys are made with it. */
export const ADMIN_KEY = 'rw_ui_test_admin_0123456789abcdef0123456789abcdef';

export const DESKTOP = { width: 1280, height: 800 };
export const PHONE = { width: 375, height: 812 };

const sleep = (ms) => new Promise((done) => setTimeout(done, ms));

function targetDirectory() {
  const metadata = spawnSync('cargo', ['metadata', '--format-version', '1', '--no-deps'], {
    cwd: REPO,
    encoding: 'utf8',
    maxBuffer: 64 * 1024 * 1024,
  });
  assert.equal(metadata.status, 0, `cargo metadata failed:\n${metadata.stderr}`);
  return JSON.parse(metadata.stdout).target_directory;
}

/** Builds the binary (a no-op when it is fresh) and returns its path. */
export function buildBinary() {
  const build = spawnSync('cargo', ['build', '--bin', 'revwallet'], { cwd: REPO, stdio: ['ignore', 'inherit', 'inherit'] });
  assert.equal(build.status, 0, 'cargo build failed (see above)');
  return join(targetDirectory(), 'debug', 'revwallet');
}

async function freePort() {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address();
  server.close();
  await once(server, 'close');
  return port;
}

/**
 * Starts `revwallet serve` on 127.0.0.1 and a fresh SQLite database, and waits for /healthz.
 * Returns { base, stop(), log() }.
 */
export async function startServer(binary, extraEnv = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'revwallet-ui-'));
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const logPath = join(dir, 'server.log');
  const logFile = openSync(logPath, 'w');
  const env = Object.fromEntries(
    Object.entries(process.env).filter(([name]) => !name.startsWith('REVWALLET_') && !name.startsWith('DB_')),
  );
  const child = spawn(binary, ['serve'], {
    env: {
      ...env,
      DATABASE_URL: `sqlite://${dir}/ui.db`,
      REVWALLET_LISTEN: `127.0.0.1:${port}`,
      REVWALLET_BOOTSTRAP_ADMIN_KEY: ADMIN_KEY,
      REVWALLET_LOG_FORMAT: 'text',
      RUST_LOG: 'info,sqlx=warn',
      ...extraEnv,
    },
    stdio: ['ignore', logFile, logFile],
  });
  const log = () => readFileSync(logPath, 'utf8');
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (child.exitCode !== null) {
      throw new Error(`revwallet exited with ${child.exitCode} before it was healthy:\n${log()}`);
    }
    try {
      const response = await fetch(`${base}/healthz`, { signal: AbortSignal.timeout(1000) });
      if (response.ok) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`revwallet was not healthy within 30 s:\n${log()}`);
    }
    await sleep(100);
  }
  const stop = async () => {
    if (child.exitCode === null) {
      const exited = once(child, 'exit');
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    }
    rmSync(dir, { recursive: true, force: true });
  };
  return { base, stop, log };
}

/**
 * Launches Chromium with a fresh profile directory (`--user-data-dir`). Every request that leaves the app's
 * origin is refused and remembered in `foreign`, so a test can assert that nothing came from the internet.
 */
export async function openBrowser(base, { javaScriptEnabled = true, viewport = DESKTOP } = {}) {
  const profile = mkdtempSync(join(tmpdir(), 'revwallet-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: CHROMIUM_FLAGS,
    javaScriptEnabled,
    viewport,
    // The pages forbid scripts by CSP; axe-core is injected by the test, so only the test may lift that.
    bypassCSP: javaScriptEnabled,
  });
  context.setDefaultTimeout(15_000);
  const foreign = [];
  await context.route('**/*', (route) => {
    const url = route.request().url();
    if (url.startsWith(`${base}/`) || url.startsWith('data:') || url === 'about:blank') {
      return route.continue();
    }
    foreign.push(url);
    return route.abort();
  });
  const page = context.pages()[0] ?? (await context.newPage());
  const close = async () => {
    await context.close();
    rmSync(profile, { recursive: true, force: true });
  };
  return { context, page, foreign, close };
}

/**
 * Clicks a submit button and waits for the page that follows. Returns the status of the POST itself (303 on
 * success, 4xx when refused) and of the page finally shown.
 */
export async function submit(page, button) {
  const shown = page.waitForResponse(
    (response) =>
      response.request().isNavigationRequest() &&
      response.request().frame() === page.mainFrame() &&
      !(response.status() >= 300 && response.status() < 400),
  );
  await button.click();
  const response = await shown;
  await page.waitForLoadState('load');
  let post = response.request();
  while (post.redirectedFrom()) post = post.redirectedFrom();
  const postResponse = post === response.request() ? response : await post.response();
  assert.equal(post.method(), 'POST', 'the form was posted');
  return { postStatus: postResponse.status(), status: response.status(), url: new URL(page.url()) };
}

/** Makes an API key of `role` through the admin API and returns its secret. */
export async function createKey(base, role, owner) {
  const response = await fetch(`${base}/wallet/keys`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${ADMIN_KEY}` },
    body: JSON.stringify({ role, name: `browser tests, ${role}`, ...(owner ? { owner } : {}) }),
  });
  const body = await response.text();
  assert.equal(response.status, 201, body);
  return JSON.parse(body).key;
}

/** Signs in on the sign-in page with `key` (the page may be signed in already) and lands on `/`. */
export async function signIn(page, base, key) {
  await page.goto(`${base}/ui/sign-in`);
  await page.getByLabel('API key').fill(key);
  const answer = await submit(page, page.getByRole('button', { name: 'Sign in' }));
  assert.deepEqual([answer.postStatus, answer.status], [303, 200], 'signed in');
  return answer;
}

/** Signs out with the header's button and lands on the sign-in page. */
export async function signOut(page) {
  const answer = await submit(page, page.getByRole('button', { name: 'Sign out' }));
  assert.deepEqual([answer.postStatus, answer.status], [303, 200], 'signed out');
  assert.equal(answer.url.pathname, '/ui/sign-in');
  return answer;
}

/** Runs axe-core in the page and fails on any serious or critical violation (others are printed). */
export async function assertAccessible(page, name) {
  await page.addScriptTag({ path: AXE });
  const results = await page.evaluate(() => window.axe.run(document, { resultTypes: ['violations'] }));
  const describe = (violation) =>
    `${violation.impact} ${violation.id}: ${violation.help} — ${violation.nodes
      .map((node) => node.target.join(' '))
      .join(', ')}`;
  if (results.violations.length > 0) {
    console.log(`axe on ${name}:\n  ${results.violations.map(describe).join('\n  ')}`);
  }
  const blocking = results.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  assert.deepEqual(blocking.map(describe), [], `axe found serious or critical problems on ${name}`);
}

/** Saves a full-page PNG of the page under docs/screenshots/ at the desktop and at the phone width. */
export async function screenshots(page, name, { audit = true } = {}) {
  mkdirSync(SCREENSHOTS, { recursive: true });
  await page.mouse.move(0, 0); // no hover state on the button just clicked
  for (const [suffix, viewport] of [
    ['desktop', DESKTOP],
    ['375px', PHONE],
  ]) {
    await page.setViewportSize(viewport);
    await page.screenshot({ path: join(SCREENSHOTS, `${name}-${suffix}.png`), fullPage: true, caret: 'hide' });
    if (audit) await assertAccessible(page, `${name} at ${viewport.width} px`);
  }
  await page.setViewportSize(DESKTOP);
}

/** The page scrolls sideways when its content is wider than the viewport: a layout bug at 375 px. */
export async function assertNoSidewaysScroll(page, name) {
  const { scrollWidth, clientWidth } = await page.evaluate(() => ({
    scrollWidth: document.documentElement.scrollWidth,
    clientWidth: document.documentElement.clientWidth,
  }));
  assert.ok(scrollWidth <= clientWidth, `${name} is ${scrollWidth} px wide in a ${clientWidth} px viewport`);
}
