/**
 * The web console in a real browser: Debian's chromium (headless) driven by playwright-core,
 * against a real gateway and the HTTP simulator. Covers login, live numbers under generated
 * traffic, key create/use/revoke with the `openai` SDK, prompt edit seen through /info, the
 * side-by-side playground, the request log by id, 1280x800 and phone-width layouts, keyboard
 * reachability and the absence of console errors. Screenshots go to test-results/console/
 * (ignored by git), or $PORTICO_SCREENSHOT_DIR.
 *
 * Needs chromium (scripts/ci-install-chromium.sh): skipped loudly without it, failed under CI=true.
 */
import { after, before, describe, it, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { spawnSync } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import { join, resolve } from 'node:path';
import OpenAI from 'openai';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import {
  ACME_KEY,
  ACME_PROMPT,
  CLOSED_KEY,
  CLOSED_PROMPT,
  demoConfig,
  startTestGateway,
  startTestSim,
  type TestGateway,
  type TestSim,
} from '../support/gateway.js';

// Browser globals used inside page.evaluate/waitForFunction callbacks (those run in chromium).
interface BrowserElement {
  tagName: string;
  textContent: string | null;
  getAttribute(name: string): string | null;
}
interface BrowserBox {
  scrollWidth: number;
  clientWidth: number;
  getBoundingClientRect(): { left: number; right: number; width: number };
}
declare const document: {
  activeElement: BrowserElement | null;
  body: BrowserElement;
  documentElement: { scrollWidth: number };
  querySelector(selector: string): BrowserElement | null;
  querySelectorAll(selector: string): { length: number } & Iterable<BrowserBox & BrowserElement>;
};
declare const window: {
  innerWidth: number;
  getComputedStyle(el: unknown, pseudo?: string): { color: string; fontStyle: string };
};
declare const sessionStorage: { getItem(key: string): string | null };

const ROOT = resolve(import.meta.dirname, '../..');
const CHROMIUM = process.env.PORTICO_CHROMIUM ?? '/usr/bin/chromium';
const SHOTS = process.env.PORTICO_SCREENSHOT_DIR ?? join(ROOT, 'test-results', 'console');
const ADMIN = 'test-admin-token';

/**
 * What a real upstream in trouble says: a 503 whose message is long (a stack-trace-like text with
 * an unbroken 150-character token). The Backends page must show all of it, wrapped, at any width.
 */
const LONG_ERROR =
  'CUDA out of memory. Tried to allocate 2.00 GiB (GPU 0; 79.35 GiB total capacity; 75.12 GiB already ' +
  'allocated; 1.02 GiB free; 77.90 GiB reserved in total by PyTorch). If reserved memory is >> allocated ' +
  'memory try setting max_split_size_mb to avoid fragmentation. See the documentation for Memory ' +
  'Management and PYTORCH_CUDA_ALLOC_CONF. Request trace: ' +
  'trace-' +
  'a1b2c3d4e5f6'.repeat(12) +
  ' END-OF-ERROR';

/** An OpenAI-compatible server that answers everything with that 503. */
async function startFlakyUpstream(): Promise<{ server: Server; baseURL: string }> {
  const server = createServer((req, res) => {
    req.resume();
    res.writeHead(503, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ error: { message: LONG_ERROR, type: 'server_error', code: null } }));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const addr = server.address();
  const port = typeof addr === 'object' && addr ? addr.port : 0;
  return { server, baseURL: `http://127.0.0.1:${port}/v1` };
}

/** Every element matching `selector` lies within the viewport horizontally (nothing cut off). */
async function assertWithinViewport(page: Page, selector: string): Promise<void> {
  const boxes = await page.evaluate((sel) => {
    const out: Array<{ left: number; right: number; vw: number }> = [];
    for (const el of document.querySelectorAll(sel)) {
      const r = el.getBoundingClientRect();
      out.push({ left: r.left, right: r.right, vw: window.innerWidth });
    }
    return out;
  }, selector);
  assert.ok(boxes.length > 0, `${selector}: nothing on the page`);
  for (const b of boxes)
    assert.ok(b.left >= 0 && b.right <= b.vw + 0.5, `${selector} spans ${b.left}..${b.right} of ${b.vw}px`);
}

function skipOrFail(t: TestContext, reason: string): void {
  if (process.env.CI === 'true') assert.fail(`CI=true but ${reason}`);
  console.warn(`SKIPPED console e2e: ${reason}`);
  t.skip(reason);
}

/** Bounded traffic: `count` chat requests over both tenants (a few to a missing model = errors). */
async function traffic(baseURL: string, count: number): Promise<void> {
  const clients = [ACME_KEY, CLOSED_KEY].map((apiKey) => new OpenAI({ apiKey, baseURL, maxRetries: 0 }));
  const one = async (i: number): Promise<void> => {
    const client = clients[i % 2] as OpenAI;
    const model = i % 10 === 9 ? 'no-such-model' : i % 3 === 0 ? 'lorem' : 'default';
    await client.chat.completions
      .create({ model, messages: [{ role: 'user', content: `question ${i}` }], max_tokens: 16 })
      .catch(() => undefined);
  };
  for (let i = 0; i < count; i += 4) await Promise.all([0, 1, 2, 3].map((k) => one(i + k)));
}

describe('web console in chromium', { timeout: 120_000 }, () => {
  let sim: TestSim;
  let gw: TestGateway;
  let browser: Browser | undefined;
  let skipReason: string | undefined;
  let auditDir: string | undefined;
  let flaky: Server | undefined;
  const consoleErrors: string[] = [];

  before(async () => {
    if (!existsSync(CHROMIUM)) {
      skipReason = `${CHROMIUM} not found (install it with scripts/ci-install-chromium.sh)`;
      return;
    }
    // Test the console as it is in the source tree.
    const vite = join(ROOT, 'node_modules', 'vite', 'bin', 'vite.js');
    const built = spawnSync(process.execPath, [vite, 'build', '--config', 'console/vite.config.ts'], {
      cwd: ROOT,
      encoding: 'utf8',
      timeout: 60_000,
    });
    assert.equal(built.status, 0, `console build failed:\n${built.stdout}\n${built.stderr}`);
    const out = join(ROOT, 'dist', 'console');
    const files = [
      join(out, 'index.html'),
      ...readdirSync(join(out, 'assets')).map((f) => join(out, 'assets', f)),
    ];
    const gzipped = files.reduce((n, f) => n + gzipSync(readFileSync(f), { level: 9 }).length, 0);
    assert.ok(gzipped < 200_000, `console bundle is ${gzipped} bytes gzipped (goal: under 200 KB)`);
    mkdirSync(SHOTS, { recursive: true });
    sim = await startTestSim({ sim: { mode: 'echo', itl_ms: 2 } });
    const upstream = await startFlakyUpstream();
    flaky = upstream.server;
    auditDir = await mkdtemp(join(tmpdir(), 'portico-console-e2e-audit-'));
    gw = await startTestGateway(
      demoConfig({
        // Audit bodies on: the request log shows them (redacted).
        telemetry: { audit: { enabled: true, dir: auditDir, bodies: true } },
        tenants: [
          {
            id: 'acme-corp',
            display_name: 'ACME Corp',
            system_prompt: ACME_PROMPT,
            allowed_models: ['default', 'lorem', 'ab', 'broken', 'primary'],
            api_keys: [{ value: ACME_KEY }],
          },
          {
            id: 'closed-ai',
            display_name: 'Closed AI',
            system_prompt: CLOSED_PROMPT,
            allowed_models: ['default', 'lorem', 'ab', 'broken', 'primary'],
            api_keys: [{ value: CLOSED_KEY }],
          },
        ],
        models: {
          default: {
            pricing: { input_per_million: 2, output_per_million: 8 },
            backends: [{ id: 'sim-http', provider: 'openai', base_url: sim.baseURL }],
          },
          lorem: {
            pricing: { input_per_million: 1, output_per_million: 1 },
            backends: [{ id: 'sim-lorem', provider: 'sim', sim: { mode: 'lorem', output_tokens: 8 } }],
          },
          // Nothing listens there: the Backends page shows it out of service, with the error.
          broken: { backends: [{ id: 'nowhere', provider: 'openai', base_url: 'http://127.0.0.1:9/v1' }] },
          // Its backend answers 503 with a long error: requests fall back to `lorem`, and after
          // two failures its circuit opens and `lorem` is the one serving (as the demo's engine
          // and its `sim` fallback).
          primary: {
            backends: [{ id: 'flaky', provider: 'openai', base_url: upstream.baseURL }],
            circuit: { failures: 2, open_ms: 600_000 },
            fallbacks: ['lorem'],
          },
          ab: {
            split: [
              { model: 'default', weight: 1 },
              { model: 'lorem', weight: 1 },
            ],
          },
        },
      }),
    );
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox'] });
  });

  after(async () => {
    await browser?.close();
    await gw?.close();
    await sim?.close();
    if (flaky) await new Promise((r) => flaky?.close(r));
    if (auditDir) await rm(auditDir, { recursive: true, force: true });
  });

  async function newPage(viewport: {
    width: number;
    height: number;
  }): Promise<{ ctx: BrowserContext; page: Page }> {
    assert.ok(browser);
    const ctx = await browser.newContext({ viewport });
    const page = await ctx.newPage();
    page.on('console', (m) => {
      if (m.type() === 'error') consoleErrors.push(`${m.text()} (${m.location().url})`);
    });
    page.on('pageerror', (e) => consoleErrors.push(`page error: ${e.message}`));
    return { ctx, page };
  }

  async function login(page: Page): Promise<void> {
    await page.goto(`${gw.url}/console/`);
    await page.getByLabel('Admin token').fill(ADMIN);
    await page.keyboard.press('Enter');
    await page.getByRole('navigation', { name: 'Console pages' }).waitFor();
  }

  /** Tab through the page; return the accessible names of what got focus. */
  async function tabStops(page: Page, max: number): Promise<string[]> {
    await page.locator('body').focus();
    const seen: string[] = [];
    for (let i = 0; i < max; i++) {
      await page.keyboard.press('Tab');
      seen.push(
        await page.evaluate(() => {
          const el = document.activeElement;
          if (!el || el === document.body) return '';
          const label = el.getAttribute('aria-label') ?? el.getAttribute('name') ?? el.textContent ?? '';
          return `${el.tagName.toLowerCase()}:${label.trim()}`;
        }),
      );
    }
    return seen;
  }

  it('works end to end at 1280x800', async (t) => {
    if (skipReason) return skipOrFail(t, skipReason);
    consoleErrors.length = 0;

    // Nothing readable without the admin token.
    for (const path of ['/admin/stats', '/admin/requests', '/admin/tenants', '/admin/models']) {
      const res = await fetch(`${gw.url}${path}`);
      assert.equal(res.status, 401, path);
    }

    const index = await fetch(`${gw.url}/console/`);
    assert.match(index.headers.get('content-security-policy') ?? '', /default-src 'self'/);
    assert.equal(index.headers.get('cache-control'), 'no-cache');

    const { ctx, page } = await newPage({ width: 1280, height: 800 });
    await page.goto(`${gw.url}/console`);
    assert.match(page.url(), /\/console\/$/);
    await page.getByLabel('Admin token').waitFor();
    assert.deepEqual(await page.evaluate(() => Object.keys(sessionStorage)), []);
    await page.screenshot({ path: join(SHOTS, 'login-1280.png') });
    await login(page);
    assert.equal(await page.evaluate(() => sessionStorage.getItem('portico.adminToken')), ADMIN);

    // --- Overview: live numbers move under generated traffic.
    await traffic(gw.baseURL, 12);
    const requests = page.getByTestId('stat-requests');
    await page.waitForFunction(
      () =>
        Number(document.querySelector('[data-testid=stat-requests]')?.textContent?.replace(/,/g, '')) >= 12,
      undefined,
      { timeout: 10_000 },
    );
    const first = Number((await requests.textContent())?.replace(/,/g, ''));
    await traffic(gw.baseURL, 20);
    await page.waitForFunction(
      (n) =>
        Number(document.querySelector('[data-testid=stat-requests]')?.textContent?.replace(/,/g, '')) >= n,
      first + 20,
      { timeout: 10_000 },
    );
    assert.notEqual(await page.getByTestId('stat-p95').textContent(), '—');
    assert.notEqual(await page.getByTestId('stat-errors').textContent(), '0 %');
    assert.match((await page.getByTestId('stat-cost').textContent()) ?? '', /^\$0\.0*[1-9]/);
    await page.getByTestId('tenant-row-acme-corp').waitFor();
    await page.getByTestId('model-row-lorem').waitFor();
    await page.locator('.chart canvas').first().waitFor();
    await page.screenshot({ path: join(SHOTS, 'overview-1280.png'), fullPage: true });
    const overviewStops = await tabStops(page, 10);
    assert.ok(overviewStops.includes('a:Playground'), `Tab reaches the nav: ${overviewStops.join(' | ')}`);

    // --- Tenants: config tenants are read-only and say so.
    await page.getByRole('link', { name: 'Tenants' }).click();
    await page.getByRole('link', { name: 'acme-corp' }).click();
    await page.getByTestId('read-only-note').waitFor();
    assert.equal(await page.locator('#system-prompt').count(), 0);

    // Create an API tenant in the console; edit its prompt; /info follows.
    await page.getByRole('link', { name: '← Tenants' }).click();
    await page.locator('input[name=tenant-id]').fill('e2e-corp');
    await page.locator('input[name=tenant-name]').fill('E2E Corp');
    await page.getByRole('button', { name: 'Create tenant' }).click();
    await page.getByRole('heading', { name: /E2E Corp/ }).waitFor();
    // No usage yet: the cost chart is scaled 0-1 (not uPlot's 0-100) and says there is no cost.
    await page.getByTestId('no-cost').waitFor();
    const costChart = page.locator('.chart[aria-label="Cost by day (USD)"][data-y-max]');
    await costChart.waitFor();
    assert.deepEqual(
      [await costChart.getAttribute('data-y-min'), await costChart.getAttribute('data-y-max')],
      ['0', '1'],
    );
    await page.screenshot({ path: join(SHOTS, 'tenant-no-cost-1280.png'), fullPage: true });

    // Key: created and shown once, used with the openai SDK.
    await page.locator('input[name=key-label]').fill('e2e');
    await page.getByRole('button', { name: 'Create key' }).click();
    const key = (await page.getByTestId('new-key').textContent()) ?? '';
    assert.match(key, /^sk-/);
    const client = new OpenAI({ apiKey: key, baseURL: gw.baseURL, maxRetries: 0 });
    const { data: answer, response } = await client.chat.completions
      .create({ model: 'default', messages: [{ role: 'user', content: 'hello from e2e' }] })
      .withResponse();
    assert.match(answer.choices[0]?.message.content ?? '', /hello from e2e/);
    const sdkRequestId = response.headers.get('x-request-id') ?? '';
    assert.match(sdkRequestId, /^req_/);

    const info = async (): Promise<{ system_prompt: string }> => {
      const r = await fetch(`${gw.url}/info`, { headers: { authorization: `Bearer ${key}` } });
      assert.equal(r.status, 200);
      return (await r.json()) as { system_prompt: string };
    };
    assert.equal((await info()).system_prompt, '');
    const prompt = 'You are E2E Corp: answer in one short sentence.';
    await page.locator('#system-prompt').fill(prompt);
    await page.getByRole('button', { name: 'Save prompt' }).click();
    await page.getByText('Saved.').waitFor();
    await waitFor(async () => (await info()).system_prompt === prompt, 'the new prompt in /info');
    // Validation: an over-long prompt cannot be saved.
    await page.locator('#system-prompt').fill('x'.repeat(100_001));
    assert.equal(await page.getByRole('button', { name: 'Save prompt' }).isDisabled(), true);
    await page.locator('#system-prompt').fill(prompt);
    const detailStops = await tabStops(page, 40);
    for (const want of ['textarea:', 'button:Save prompt', 'button:Create key', 'button:Revoke'])
      assert.ok(
        detailStops.some((s) => s.startsWith(want)),
        `Tab reaches ${want}: ${detailStops.join(' | ')}`,
      );
    // Limits: validated in the page, saved through the admin API.
    await page.locator('input[name=limit-burst]').fill('1.5');
    await page.getByRole('button', { name: 'Save limits' }).click();
    await page.getByText('Burst: enter a positive whole number').waitFor();
    await page.locator('input[name=limit-burst]').fill('50');
    await page.locator('input[name=limit-requests_per_second]').fill('25');
    await page.locator('input[name=limit-daily_requests]').fill('1000');
    await page.getByRole('button', { name: 'Save limits' }).click();
    await page.getByText('Saved. New requests are admitted').waitFor();
    const saved = (await (
      await fetch(`${gw.url}/admin/tenants/e2e-corp`, { headers: { authorization: `Bearer ${ADMIN}` } })
    ).json()) as { limits: unknown; quota: unknown };
    assert.deepEqual(saved.limits, { requests_per_second: 25, burst: 50 });
    assert.deepEqual(saved.quota, { daily_requests: 1000 });
    await page.getByTestId('quotas').getByText('Requests today').waitFor();
    await page.screenshot({ path: join(SHOTS, 'tenant-1280.png'), fullPage: true });

    // Revoke in the console; the SDK is refused.
    page.once('dialog', (d) => void d.accept());
    await page.getByRole('button', { name: 'Revoke' }).click();
    await page.getByText(/^revoked /).waitFor();
    await waitFor(async () => {
      try {
        await client.chat.completions.create({
          model: 'default',
          messages: [{ role: 'user', content: 'x' }],
        });
        return false;
      } catch (err) {
        return err instanceof OpenAI.AuthenticationError;
      }
    }, 'the revoked key to be refused');

    // Delete the API tenant; it leaves the list.
    page.once('dialog', (d) => void d.accept());
    await page.getByRole('button', { name: 'Delete tenant' }).click();
    await page.getByRole('heading', { name: 'Tenants' }).waitFor();
    await page.getByRole('link', { name: 'acme-corp' }).waitFor();
    assert.equal(await page.getByRole('link', { name: 'e2e-corp' }).count(), 0);

    // --- Playground: two tenants, one question, both streams complete.
    await page.getByRole('link', { name: 'Playground' }).click();
    await page.locator('select[name=tenant-0] option[value=closed-ai]').waitFor({ state: 'attached' });
    await page.locator('select[name=tenant-0]').selectOption('acme-corp');
    await page.locator('select[name=tenant-1]').selectOption('closed-ai');
    await page.locator('#question').fill('How should we start the project?');
    await page.getByRole('button', { name: 'Ask both' }).click();
    for (const n of [0, 1]) await page.locator(`[data-testid=answer-${n}][data-state=done]`).waitFor();
    const left = (await page.getByTestId('answer-0').locator('.answer-text').textContent()) ?? '';
    const right = (await page.getByTestId('answer-1').locator('.answer-text').textContent()) ?? '';
    assert.ok(left.includes(ACME_PROMPT) && left.includes('How should we start'), left);
    assert.ok(right.includes(CLOSED_PROMPT) && right.includes('How should we start'), right);
    for (const n of [0, 1]) {
      assert.match((await page.getByTestId(`tokens-${n}`).textContent()) ?? '', /\d+ in \/ \d+ out/);
      assert.match((await page.getByTestId(`cost-${n}`).textContent()) ?? '', /^\$0\.0*[1-9]/);
      assert.match((await page.getByTestId(`latency-${n}`).textContent()) ?? '', /ms$/);
    }
    await page.screenshot({ path: join(SHOTS, 'playground-1280.png'), fullPage: true });

    // The request link opens that request's details, not the unfiltered log.
    const playgroundId = ((await page.getByTestId('request-link-0').textContent()) ?? '').trim();
    assert.match(playgroundId, /^req_/);
    await page.getByTestId('request-link-0').click();
    await page.waitForURL((u) => u.hash === `#/requests/${playgroundId}`);
    assert.equal(await page.getByLabel('Request id (or prefix)').inputValue(), playgroundId);
    const detail = page.getByTestId('request-detail');
    await detail.getByText(playgroundId).first().waitFor();
    await page.waitForFunction(
      () => document.querySelectorAll('[data-testid=request-log] tbody tr').length === 2, // row + details
    );
    assert.equal(
      await page.getByRole('button', { name: playgroundId }).getAttribute('aria-expanded'),
      'true',
    );
    assert.equal(await detail.getByText('/admin/playground').count(), 1);
    await page.screenshot({ path: join(SHOTS, 'playground-request-detail-1280.png'), fullPage: true });
    await page.goBack();
    await page.locator('#question').waitFor();
    await page.locator('select[name=tenant-0] option[value=closed-ai]').waitFor({ state: 'attached' });
    await page.locator('#question').fill('How should we start the project?');

    // Two models side by side: an A/B split alias (its variant shown) against a plain model.
    await page.locator('select[name=model-0]').selectOption('ab');
    await page.locator('input[name=user-0]').fill('alice');
    await page.locator('select[name=model-1]').selectOption('lorem');
    await page.getByRole('button', { name: 'Ask both' }).click();
    for (const n of [0, 1]) await page.locator(`[data-testid=answer-${n}][data-state=done]`).waitFor();
    assert.match((await page.getByTestId('variant-0').textContent()) ?? '', /^(default|lorem)$/);
    assert.equal(await page.getByTestId('variant-1').count(), 0);
    await page.screenshot({ path: join(SHOTS, 'playground-ab-1280.png'), fullPage: true });

    // --- Request log: find the SDK request by its id.
    await page.getByRole('link', { name: 'Request log' }).click();
    await page.locator('input[name=filter-request_id]').fill(sdkRequestId);
    await page.keyboard.press('Enter');
    const row = page.getByRole('button', { name: sdkRequestId });
    await row.waitFor();
    await page.waitForFunction(
      () => document.querySelectorAll('[data-testid=request-log] tbody tr').length === 1,
    );
    await row.click();
    await page.getByTestId('request-detail').getByText('sim-http').waitFor();
    await page.getByTestId('request-detail').locator('pre', { hasText: 'hello from e2e' }).first().waitFor();
    await page.screenshot({ path: join(SHOTS, 'requests-1280.png'), fullPage: true });

    // Filters: labelled inputs, empty, with example placeholders styled as placeholders.
    await page.getByRole('button', { name: 'Clear' }).click();
    for (const label of ['Tenant', 'Model', 'Status', 'Request id (or prefix)']) {
      const input = page.getByLabel(label, { exact: true });
      assert.equal(await input.inputValue(), '', label);
      assert.match((await input.getAttribute('placeholder')) ?? '', /^e\.g\. /, label);
      const look = await input.evaluate((el) => ({
        text: window.getComputedStyle(el).color,
        placeholder: window.getComputedStyle(el, '::placeholder').color,
        style: window.getComputedStyle(el, '::placeholder').fontStyle,
      }));
      assert.notEqual(look.placeholder, look.text, `${label}: placeholder colour`);
      assert.equal(look.style, 'italic', `${label}: placeholder style`);
    }

    // A 415 (rejected before any handler ran) is in the log, and its details say why.
    const rejected = await fetch(`${gw.baseURL}/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${ACME_KEY}`, 'content-type': 'text/plain' },
      body: 'hello',
    });
    assert.equal(rejected.status, 415);
    const rejectedId = rejected.headers.get('x-request-id') ?? '';
    const rejectedMessage = ((await rejected.json()) as { error: { message: string } }).error.message;
    await page.getByLabel('Status', { exact: true }).fill('415');
    await page.keyboard.press('Enter');
    const row415 = page.getByRole('button', { name: rejectedId });
    await row415.waitFor();
    await row415.click();
    const detail415 = page.getByTestId('request-error');
    await detail415.waitFor();
    assert.equal(
      (await detail415.textContent())?.replace(/\s+/g, ' '),
      `415 unsupported_media_type: ${rejectedMessage}`,
    );
    await assertWithinViewport(page, '[data-testid=request-error]');
    await page.screenshot({ path: join(SHOTS, 'requests-415-1280.png'), fullPage: true });

    // --- Backends.
    await page.getByRole('link', { name: 'Backends' }).click();
    await page.getByTestId('pool-default').getByText('sim-http').waitFor();
    await page.getByTestId('pool-lorem').getByRole('rowheader', { name: 'sim-lorem' }).waitFor();
    await page.getByTestId('pool-ab').getByText('A/B split').waitFor();
    const acme = new OpenAI({ apiKey: ACME_KEY, baseURL: gw.baseURL, maxRetries: 0 });
    for (let i = 0; i < 3; i++)
      await acme.chat.completions
        .create({ model: 'broken', messages: [{ role: 'user', content: 'x' }] })
        .catch(() => undefined);
    await page.waitForFunction(() => {
      const row = document.querySelector('[data-testid=backend-nowhere]')?.textContent ?? '';
      const problem = document.querySelector('[data-testid=problem-nowhere]')?.textContent ?? '';
      return !row.includes('up') && /ECONNREFUSED|connect|refused|failed/i.test(problem);
    });
    // `primary` fails over to `lorem` (every request still answered); once its circuit opens the
    // page says the fallback is serving, and shows the long upstream error in full.
    for (let i = 0; i < 3; i++) {
      const answer = await acme.chat.completions.create({
        model: 'primary',
        messages: [{ role: 'user', content: `fallback ${i}` }],
      });
      assert.ok((answer.choices[0]?.message.content ?? '').length > 0);
    }
    const serving = page.getByTestId('serving-primary');
    await page.waitForFunction(() =>
      /fallback lorem \(sim-lorem\)/.test(
        document.querySelector('[data-testid=serving-primary]')?.textContent ?? '',
      ),
    );
    assert.match((await serving.textContent()) ?? '', /no backend of primary is in service/);
    assert.equal(
      (await page.getByTestId('chain-primary').locator('.chain-member').allTextContents()).join(' → '),
      'primary → lorem',
    );
    assert.equal(
      await page.getByTestId('chain-primary').locator('.chain-member[aria-current=true]').textContent(),
      'lorem',
    );
    await page.getByTestId('chain-lorem').getByText('Fallback for: primary').waitFor();
    const longError = page.getByTestId('last-error-flaky');
    await longError.waitFor();
    assert.ok(((await longError.textContent()) ?? '').includes(LONG_ERROR), 'the whole error is shown');
    await assertWithinViewport(page, '[data-testid=last-error-flaky]');
    await assertWithinViewport(page, '[data-testid=serving-primary]');
    // Latency from the live window: the HTTP simulator answered within the last minute.
    await page.waitForFunction(() =>
      /\d ms/.test(document.querySelector('[data-testid=backend-sim-http]')?.textContent ?? ''),
    );
    await page.screenshot({ path: join(SHOTS, 'backends-1280.png'), fullPage: true });
    // No table is cut at 1280 px: none scrolls sideways.
    const cut = await page.evaluate(() => {
      const out: number[] = [];
      for (const el of document.querySelectorAll('.table-wrap')) out.push(el.scrollWidth - el.clientWidth);
      return out;
    });
    assert.ok(
      cut.every((d) => d <= 1),
      `tables wider than their box at 1280 px: ${cut.join(', ')}`,
    );

    // --- The admin API reference.
    await page.goto(`${gw.url}/docs`);
    await page.getByText('Portico admin API').first().waitFor();
    await page.getByText('/admin/playground').first().waitFor();
    await page.screenshot({ path: join(SHOTS, 'docs-1280.png') });

    await ctx.close();
    assert.deepEqual(consoleErrors, []);
  });

  it('fits a phone-width viewport', async (t) => {
    if (skipReason) return skipOrFail(t, skipReason);
    consoleErrors.length = 0;
    const { ctx, page } = await newPage({ width: 390, height: 844 });
    await login(page);
    const pages: Array<[string, string]> = [
      ['overview', '[data-testid=stat-requests]'],
      ['tenants', 'table'],
      ['tenants/acme-corp', '[data-testid=keys]'],
      ['backends', '[data-testid=last-error-flaky]'],
      ['requests', '[data-testid=request-log]'],
      ['playground', '#question'],
    ];
    // The 415 of the first test, opened by its link.
    const logged = (await (
      await fetch(`${gw.url}/admin/requests?status=415`, { headers: { authorization: `Bearer ${ADMIN}` } })
    ).json()) as { data: Array<{ request_id: string }> };
    const id415 = logged.data[0]?.request_id;
    assert.ok(id415, 'the first test left a 415 in the log');
    pages.push([`requests/${id415}`, '[data-testid=request-error]']);
    for (const [hash, ready] of pages) {
      await page.goto(`${gw.url}/console/#/${hash}`);
      await page.locator(ready).first().waitFor();
      const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
      assert.ok(overflow <= 1, `#/${hash} overflows the viewport by ${overflow}px`);
      if (hash === 'backends') {
        // The long error wraps inside the phone's width; the fallback note too.
        await assertWithinViewport(page, '[data-testid=last-error-flaky]');
        await assertWithinViewport(page, '[data-testid=serving-primary]');
      }
      if (hash === 'tenants/acme-corp') {
        // Real (tiny) costs: the axis follows them, below 1 USD and above 0.
        const chart = page.locator('.chart[aria-label="Cost by day (USD)"][data-y-max]');
        await page.waitForFunction(
          () =>
            Number(
              document.querySelector('.chart[aria-label="Cost by day (USD)"]')?.getAttribute('data-y-max'),
            ) < 1,
        );
        const yMax = Number(await chart.getAttribute('data-y-max'));
        assert.ok(yMax > 0 && yMax < 1, `cost axis up to ${yMax}`);
        assert.equal(await page.getByTestId('no-cost').count(), 0);
      }
      if (hash.startsWith('requests/')) await assertWithinViewport(page, '[data-testid=request-error]');
      const name = hash.startsWith('requests/') ? 'requests-415' : hash.replace('/', '-');
      await page.screenshot({ path: join(SHOTS, `${name}-phone.png`), fullPage: true });
    }
    await ctx.close();
    assert.deepEqual(consoleErrors, []);
  });
});

async function waitFor(check: () => Promise<boolean>, what: string, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.fail(`timed out waiting for ${what}`);
}
