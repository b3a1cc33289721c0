// Swagger UI of a running tmf635 server, in headless Debian Chromium, with no network but the
// server itself:
//
//   node swagger-ui.check.mjs <server-root-url> [screenshot.png]
//
// e.g. node swagger-ui.check.mjs http://127.0.0.1:8080 /tmp/swagger-ui.png
//
// Opens <root>/swagger-ui/ and checks that
//  1. every operation of api/tmf635.openapi.json is listed, with its method and path (Swagger
//     UI renders one element per operation, id `operations-<tag>-<operationId>` with whitespace
//     as `_` and CSS-escaped: `operations-notification_listeners_\(client_side\)-listenTo...`);
//  2. GET /usage (listUsage) -> "Try it out" -> "Execute" shows a 200 from the real server with
//     a JSON array body (holding the usage whose id is in env EXPECT_USAGE_ID, when set); with
//     env AUTH_TOKEN (a server with authentication on), it first shows 401, then "Authorize"
//     with the token as bearerAuth and "Execute" again shows the 200;
//  3. the operation groups are shown in api/'s tag order, usage and usageSpecification first;
//  4. no request the page made went anywhere but the server's own origin: every request is
//     recorded, and any other one is aborted (nothing leaves the machine) and fails the check.
// With a screenshot path, saves the whole page after the response is shown there, and beside it
// <name>-operations.png (the page as loaded) and <name>-listUsage.png (GET /usage and its
// response). Exits 0 when all checks pass, 1 when any fails.
//
// Browser: CHROMIUM env, default /usr/bin/chromium (Debian's package); playwright-core brings
// no browser of its own.

import { chromium } from 'playwright-core';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = dirname(fileURLToPath(import.meta.url));
const API_DOCUMENT = join(HERE, '..', '..', 'api', 'tmf635.openapi.json');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const TIMEOUT_MS = Number(process.env.UI_TIMEOUT_MS || 30000);

const [rootArg, screenshotPath] = process.argv.slice(2);
if (!rootArg) {
  console.error('usage: node swagger-ui.check.mjs <server-root-url> [screenshot.png]');
  process.exit(64);
}
const root = new URL(rootArg);
const origin = root.origin;
const uiUrl = new URL('/swagger-ui/', root).href;

// shot.png -> shot-NAME.png
const sibling = (path, name) => path.replace(/(\.png)?$/i, `-${name}.png`);

const failures = [];
const fail = (message) => {
  failures.push(message);
  console.error(`FAIL: ${message}`);
};
const ok = (message) => console.log(`ok: ${message}`);

// Every operation of the source document, with the first tag Swagger UI files it under.
const api = JSON.parse(readFileSync(API_DOCUMENT, 'utf8'));
const METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'];
const operations = [];
for (const [path, item] of Object.entries(api.paths)) {
  for (const method of METHODS) {
    const op = item[method];
    if (op) operations.push({ method, path, operationId: op.operationId, tag: (op.tags || ['default'])[0] });
  }
}

const userDataDir = mkdtempSync(join(tmpdir(), 'tmf635-chromium-'));
let context;
try {
  context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run',
    ],
    viewport: { width: 1280, height: 900 },
    timeout: TIMEOUT_MS,
  });
} catch (error) {
  rmSync(userDataDir, { recursive: true, force: true });
  console.error(`FAIL: cannot start ${CHROMIUM}: ${error.message}`);
  process.exit(1);
}

// Record every request of every page; let through only the server's own origin (and inline
// data:/blob: URLs, which go nowhere).
context.setDefaultTimeout(TIMEOUT_MS);
const requests = [];
const foreign = [];
await context.route('**/*', (route) => {
  const url = route.request().url();
  if (url.startsWith('data:') || url.startsWith('blob:')) return route.continue();
  let sameOrigin = false;
  try {
    sameOrigin = new URL(url).origin === origin;
  } catch {
    sameOrigin = false;
  }
  if (sameOrigin) return route.continue();
  foreign.push(url);
  return route.abort('blockedbyclient');
});
context.on('request', (request) => requests.push(`${request.method()} ${request.url()}`));

const page = context.pages()[0] || (await context.newPage());
const pageErrors = [];
page.on('pageerror', (error) => pageErrors.push(String(error)));
page.on('console', (message) => {
  if (message.type() === 'error') console.error(`  browser console error: ${message.text()}`);
});

try {
  // 1. every operation is listed
  const response = await page.goto(uiUrl, { waitUntil: 'load', timeout: TIMEOUT_MS });
  if (!response || response.status() !== 200) fail(`GET ${uiUrl} answered ${response && response.status()}`);
  await page.waitForSelector('.opblock', { timeout: TIMEOUT_MS });
  await page
    .waitForFunction((n) => document.querySelectorAll('.opblock').length >= n, operations.length, {
      timeout: TIMEOUT_MS,
    })
    .catch(() => {});
  const rendered = await page.$$eval('.opblock[id^="operations-"]', (elements) =>
    elements.map((e) => ({
      id: e.id,
      method: (e.querySelector('.opblock-summary-method') || {}).textContent || '',
      path: (e.querySelector('.opblock-summary-path') || {}).getAttribute?.('data-path') || '',
    })),
  );
  // The id Swagger UI gives an operation: escapeDeepLinkPath(["operations", tag, operationId]
  // .join("-")), i.e. whitespace as "_", then CSS.escape (so "(" shows as "\(" in the id).
  const expectedIds = await page.evaluate(
    (ops) => ops.map((op) => CSS.escape(`operations-${op.tag}-${op.operationId}`.trim().replace(/\s/g, '_'))),
    operations,
  );
  operations.forEach((op, i) => {
    op.domId = expectedIds[i];
  });
  for (const op of operations) {
    const found = rendered.find((r) => r.id === op.domId);
    if (!found) {
      fail(`${op.method.toUpperCase()} ${op.path} (${op.operationId}) is not listed: no element with id ${op.domId}`);
    } else if (found.method.toLowerCase() !== op.method || found.path !== op.path) {
      fail(`element ${op.domId} shows ${found.method} ${found.path}, not ${op.method.toUpperCase()} ${op.path}`);
    }
  }
  const expected = new Set(expectedIds);
  for (const r of rendered) if (!expected.has(r.id)) fail(`Swagger UI lists an operation not in api/: ${r.id}`);
  // Usages and specifications are what a developer opens the page for: their groups come
  // first, in api/'s tag order.
  const shownTags = await page.$$eval('.opblock-tag-section .opblock-tag', (elements) =>
    elements.map((e) => e.getAttribute('data-tag')),
  );
  const apiTags = (api.tags || []).map((t) => t.name);
  if (shownTags.slice(0, 2).join(',') !== 'usage,usageSpecification') {
    fail(`Swagger UI shows the groups in the order ${JSON.stringify(shownTags)}; usage and usageSpecification must come first`);
  } else if (JSON.stringify(shownTags) !== JSON.stringify(apiTags)) {
    fail(`Swagger UI shows the groups in the order ${JSON.stringify(shownTags)}, not api/'s ${JSON.stringify(apiTags)}`);
  } else {
    ok(`the groups are shown in api/'s order: ${shownTags.join(', ')}`);
  }
  if (screenshotPath) await page.screenshot({ path: sibling(screenshotPath, 'operations'), fullPage: true });
  if (failures.length === 0) ok(`all ${operations.length} operations of api/tmf635.openapi.json are listed`);

  // 2. GET /usage: Try it out -> Execute -> 200 with a JSON array from the real server (with
  //    AUTH_TOKEN: first 401, then Authorize with the token, Execute again -> 200)
  const listUsage = operations.find((op) => op.operationId === 'listUsage');
  const block = page.locator(`[id="${listUsage.domId}"]`);
  await block.locator('.opblock-summary-control').first().click();
  await block.locator('button.try-out__btn', { hasText: 'Try it out' }).click({ timeout: TIMEOUT_MS });
  const live = block.locator('.live-responses-table .response').first();
  // Execute, wait for the server's answer and for Swagger UI to show its status.
  const execute = async () => {
    const executed = page.waitForResponse(
      (r) => new URL(r.url()).pathname === `${api.servers[0].url}/usage` && r.request().method() === 'GET',
      { timeout: TIMEOUT_MS },
    );
    await block.locator('button.execute, button.btn-clear', { hasText: 'Execute' }).first().click({ timeout: TIMEOUT_MS });
    const serverResponse = await executed;
    ok(`the page sent GET ${serverResponse.url()} -> ${serverResponse.status()}`);
    await live.waitFor({ timeout: TIMEOUT_MS });
    const want = String(serverResponse.status());
    for (const started = Date.now(); Date.now() - started < TIMEOUT_MS; ) {
      if ((await live.locator('.response-col_status').first().innerText()).trim() === want) break;
      await page.waitForTimeout(100);
    }
    return {
      status: (await live.locator('.response-col_status').first().innerText()).trim(),
      body: (await live.locator('.response-col_description pre').first().innerText()).trim(),
    };
  };
  let shown = await execute();
  const token = process.env.AUTH_TOKEN;
  if (token) {
    if (shown.status !== '401') fail(`without a token Swagger UI shows ${JSON.stringify(shown.status)} for GET /usage, not 401`);
    else ok('without a token GET /usage shows 401');
    await page.locator('.auth-wrapper button.authorize').first().click();
    const scheme = page.locator('.modal-ux .auth-container', { hasText: 'bearerAuth' }).first();
    await scheme.locator('input').first().fill(token);
    await scheme.locator('button.authorize').first().click();
    await page.locator('.modal-ux button.btn-done').first().click();
    ok('Authorize: bearer token entered');
    shown = await execute();
  }
  const shownStatus = shown.status;
  const shownBody = shown.body;
  if (shownStatus !== '200') fail(`Swagger UI shows status ${JSON.stringify(shownStatus)} for GET /usage, not 200`);
  let body;
  try {
    body = JSON.parse(shownBody);
  } catch (error) {
    fail(`the response body Swagger UI shows is not JSON (${error.message}): ${shownBody.slice(0, 300)}`);
  }
  if (body !== undefined) {
    if (!Array.isArray(body)) {
      fail(`the response body Swagger UI shows is not a JSON array: ${shownBody.slice(0, 300)}`);
    } else {
      ok(`Swagger UI shows 200 with a JSON array of ${body.length} usage(s)`);
      const expectId = process.env.EXPECT_USAGE_ID;
      if (expectId) {
        if (body.some((u) => u && u.id === expectId)) ok(`the array holds the seeded usage ${expectId}`);
        else fail(`the array does not hold the seeded usage ${expectId}: ${shownBody.slice(0, 300)}`);
      }
    }
  }

  if (screenshotPath) {
    await page.screenshot({ path: screenshotPath, fullPage: true });
    await block.screenshot({ path: sibling(screenshotPath, 'listUsage') });
    ok(`screenshots: ${screenshotPath} (whole page after Execute), ${sibling(screenshotPath, 'operations')} (as loaded), ${sibling(screenshotPath, 'listUsage')} (GET /usage with its response)`);
  }
} catch (error) {
  fail(`the check could not finish: ${error.message}`);
  if (screenshotPath) await page.screenshot({ path: screenshotPath, fullPage: true }).catch(() => {});
} finally {
  // 4. nothing but the server's own origin
  if (foreign.length > 0) {
    for (const url of foreign) fail(`the page requested ${url}, outside ${origin} (blocked)`);
  } else {
    ok(`all ${requests.length} requests of the page went to ${origin}`);
  }
  for (const error of pageErrors) fail(`uncaught error in the page: ${error}`);
  await context.close().catch(() => {});
  rmSync(userDataDir, { recursive: true, force: true });
}

if (process.env.UI_VERBOSE) for (const r of requests) console.log(`  request: ${r}`);
if (failures.length > 0) {
  console.error(`swagger-ui.check: ${failures.length} check(s) failed`);
  process.exit(1);
}
console.log('swagger-ui.check: all checks passed');
