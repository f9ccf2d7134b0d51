// The dashboard of `atmo serve`, in headless Chromium: it loads, and as requests are submitted
// through the API its counts, worker states and failure list change. Saves a screenshot.
//
// Usage: ATMO_BIN=path/to/atmo node dashboard.test.mjs
// (CHROMIUM overrides /usr/bin/chromium; SCREENSHOT overrides target/dashboard.png.)

import { spawn } from 'node:child_process';
import { mkdtempSync, mkdirSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import assert from 'node:assert/strict';
import { chromium } from 'playwright-core';

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, '../..');
const bin = process.env.ATMO_BIN ?? join(root, 'target/debug/atmo');
const screenshot = process.env.SCREENSHOT ?? join(root, 'target/dashboard.png');

function freePort() {
  return new Promise((ok, fail) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => ok(port));
    });
    s.on('error', fail);
  });
}

async function until(what, f, ms = 20000) {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await f();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const port = await freePort();
const base = `http://127.0.0.1:${port}`;
const token = 'browser-test-token';
const data = mkdtempSync(join(tmpdir(), 'atmo-browser-'));
const service = spawn(bin, ['serve', '--store', 'memory', '--bind', `127.0.0.1:${port}`, '--builtin-workers', '1'], {
  cwd: data,
  env: { ...process.env, ATMO_TOKEN: token },
  stdio: ['ignore', 'inherit', 'inherit'],
});
const auth = { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' };
async function api(path, body) {
  const res = await fetch(base + path, { method: body ? 'POST' : 'GET', headers: auth, body: body && JSON.stringify(body) });
  return { status: res.status, body: await res.json() };
}

let browser;
try {
  await until('the service', async () => (await fetch(`${base}/healthz`).catch(() => null))?.ok);
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run',
    ],
    // Playwright gives every launch a fresh temporary profile (user data dir).
  });
  const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
  const errors = [];
  page.on('pageerror', (e) => errors.push(e.message));
  // Before the first data arrives the page says it is loading, not "0" or "No banks yet.":
  // hold every API answer until that is checked.
  const held = [];
  let release = false;
  await page.route('**/v1/**', (route) => (release ? route.continue() : held.push(route)));
  await page.goto(`${base}/?token=${token}`);
  await until('the page to ask for data', async () => held.length > 0);
  assert.equal(await page.getByTestId('banks-loading').textContent(), 'Loading…');
  assert.equal(await page.getByTestId('failures-loading').count(), 1);
  assert.equal(await page.getByTestId('requests-loading').count(), 1);
  assert.equal((await page.getByTestId('count-completed').textContent()).trim(), '…');
  assert.doesNotMatch(await page.getByTestId('banks').textContent(), /No banks yet/);
  release = true;
  for (const r of held.splice(0)) await r.continue();

  const count = async (status) => Number((await page.getByTestId(`count-${status}`).textContent()).replace(/[^0-9]/g, '') || 0);
  await until('the banks', async () => (await page.getByTestId('bank-builtin-crypto').count()) > 0);
  assert.equal(await count('completed'), 0);
  assert.equal(await count('failed'), 0);

  // Work arrives through the API: completed requests, then failing ones.
  const hashes = [];
  for (let i = 0; i < 5; i++) {
    const r = await api('/v1/requests?wait=5s', { taskId: 'HASH', parameters: { data: `item ${i}` } });
    assert.equal(r.status, 201);
    assert.equal(r.body.result.status, 'completed');
    hashes.push(r.body.result);
  }
  const bad = await api('/v1/requests?wait=5s', {
    taskId: 'DECRYPT',
    parameters: { ciphertext: 'A'.repeat(43) + '=', key: 'A'.repeat(43) + '=', nonce: 'A'.repeat(16) },
  });
  assert.equal(bad.status, 201, JSON.stringify(bad.body));
  assert.equal(bad.body.result.status, 'failed', JSON.stringify(bad.body));
  const failedId = bad.body.requestId;

  await until('completed = 5', async () => (await count('completed')) === 5);
  await until('failed = 1', async () => (await count('failed')) === 1);
  await until('the failure in the list', async () => (await page.getByTestId(`failure-${failedId}`).count()) > 0);
  // Durations are the server's, to the microsecond: hashing a few bytes takes well under a
  // millisecond, which the table shows in µs (it showed "0 µs" when it subtracted
  // millisecond timestamps).
  const fast = hashes.filter((h) => h.processingTimeMs < 1);
  assert.ok(fast.length > 0, `a sub-millisecond HASH: ${hashes.map((h) => h.processingTimeMs).join(', ')}`);
  for (const h of fast) {
    const row = page.getByTestId(`request-row-${h.requestId}`);
    await until(`the row of ${h.requestId}`, async () => (await row.count()) > 0);
    const shown = (await row.locator('td').last().textContent()).trim();
    assert.equal(shown, `${Math.round(h.processingTimeMs * 1000)} µs`);
    assert.notEqual(shown, '0 µs');
  }
  const failureText = await page.getByTestId('failures').textContent();
  assert.match(failureText, /DECRYPT|decrypt|authentic|tamper/i);

  // A busy worker shows as busy while it runs, idle again after.
  const slow = await api('/v1/requests', { taskId: 'MONTE_CARLO_PI', parameters: { iterations: 200000000, seed: 1 } });
  assert.equal(slow.status, 201);
  const busy = await until('a busy worker', async () => {
    const tiles = page.locator('[data-testid^="worker-status-builtin-computation"]');
    for (const t of await tiles.all()) if (/busy/i.test(await t.textContent())) return t;
    return null;
  });
  assert.ok(busy);
  await api(`/v1/requests/${slow.body.requestId}/cancel`, {});
  await until('cancelled = 1', async () => (await count('cancelled')) === 1);

  // The request view shows a whole lifecycle.
  await page.getByTestId(`failure-${failedId}`).click();
  await until('the request view', async () => (await page.getByTestId('detail-id').textContent())?.includes(failedId));
  const history = await page.getByTestId('detail-history').textContent();
  assert.match(history, /pending/);
  assert.match(history, /failed/);

  await page.getByTestId('detail-close').click();

  // The form submits a request, showing the task's parameters from GET /v1/tasks.
  await page.getByTestId('submit-task').selectOption('HASH');
  await until('the schema of HASH', async () => (await page.getByTestId('schema-algorithm').count()) > 0);
  assert.match(await page.getByTestId('schema-algorithm').textContent(), /sha256/);
  assert.match(await page.getByTestId('schema-data').textContent(), /string/);
  await page.getByTestId('submit-params').fill('{"data": "from the form"}');
  await page.getByTestId('submit-button').click();
  await until('completed = 6', async () => (await count('completed')) === 6);

  mkdirSync(dirname(screenshot), { recursive: true });
  await page.screenshot({ path: screenshot, fullPage: true });
  assert.deepEqual(errors, [], `script errors on the page: ${errors.join('; ')}`);
  console.log(`dashboard test passed; screenshot at ${screenshot}`);
} finally {
  await browser?.close();
  service.kill('SIGTERM');
}
