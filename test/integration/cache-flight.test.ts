/**
 * Single-flight through a running gateway and the HTTP simulator: who owns the shared upstream call.
 *
 * - A leader whose client leaves in the middle of a stream: its followers still get the whole
 *   answer (the upstream call goes on for them), the entry is stored when the stream completes,
 *   the leader is finished at once (499, billed as partial for what it received, its in-flight
 *   slot given back), followers are billed as coalesced cache hits as before.
 * - A stalled leader: a follower leaves on its own client disconnect or its own deadline, at once,
 *   without waiting for the leader, and leaves no waiter behind in the flight; once no one reads,
 *   the upstream call is cancelled.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { LedgerRecord } from '../../src/state/ports.js';
import type { Flight } from '../../src/cache/flight.js';
import { buildConfig } from '../../src/config/load.js';
import {
  ACME_KEY,
  demoConfig,
  startTestGateway,
  startTestSim,
  type TestGateway,
  type TestSim,
} from '../support/gateway.js';
import { abortable, metric, post, upstreamCalls } from '../support/cache-requests.js';

function chatBody(content: string, extra: Record<string, unknown> = {}): string {
  return JSON.stringify({
    model: 'slow',
    messages: [{ role: 'user', content }],
    max_tokens: 16,
    temperature: 0,
    ...extra,
  });
}

/** Stream `body`, and leave (cancel the request) once `events` content events arrived. */
async function leaveAfter(gw: TestGateway, body: string, events: number): Promise<string> {
  const ac = new AbortController();
  const res = await fetch(`${gw.baseURL}/chat/completions`, {
    method: 'POST',
    signal: ac.signal,
    headers: { authorization: `Bearer ${ACME_KEY}`, 'content-type': 'application/json' },
    body,
  });
  assert.equal(res.status, 200);
  const reader = (res.body as ReadableStream<Uint8Array>).getReader();
  const decoder = new TextDecoder();
  let text = '';
  while ((text.match(/^data: \{/gm) ?? []).length < events) {
    const { value, done } = await reader.read();
    if (done) break;
    text += decoder.decode(value, { stream: true });
  }
  ac.abort();
  await reader.cancel().catch(() => undefined);
  return text;
}

const inFlight = async (gw: TestGateway): Promise<number> =>
  (await metric(gw, 'portico_requests_in_flight', 'tenant="acme-corp"')) || 0;

/** Upstream attempts of the stalled backend that ended (any outcome: a cancelled one is `aborted`). */
const upstreamEnded = async (gw: TestGateway): Promise<number> =>
  (await metric(gw, 'portico_upstream_requests_total', 'backend="sim-stalled"')) || 0;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Poll `probe` until it returns true, for at most `ms`; true if it did. */
async function eventually(probe: () => boolean | Promise<boolean>, ms = 1500): Promise<boolean> {
  const end = Date.now() + ms;
  for (;;) {
    if (await probe()) return true;
    if (Date.now() > end) return false;
    await sleep(20);
  }
}

/** `p`, or 'timeout' when it takes longer than `ms`. */
function within<T>(p: Promise<T>, ms: number): Promise<T | 'timeout'> {
  return Promise.race([p, sleep(ms).then(() => 'timeout' as const)]);
}

function content(text: string): string {
  return text
    .split('\n')
    .filter((l) => l.startsWith('data: {'))
    .map(
      (l) =>
        (JSON.parse(l.slice(6)) as { choices?: Array<{ delta?: { content?: string } }> }).choices?.[0]?.delta
          ?.content ?? '',
    )
    .join('');
}

/** Record the ledger lines and the flights the gateway starts. */
function observe(gw: TestGateway): { ledger: LedgerRecord[]; flights: Flight[] } {
  const ledger: LedgerRecord[] = [];
  const flights: Flight[] = [];
  const writer = gw.gateway.tenancy?.state.ledgerWriter;
  assert.ok(writer);
  const write = writer.write.bind(writer);
  writer.write = (...args: Parameters<typeof write>) => {
    ledger.push(args[0]);
    return write(...args);
  };
  const table = gw.gateway.cache.flights;
  const start = table.start.bind(table);
  table.start = (key: string) => {
    const f = start(key);
    flights.push(f);
    return f;
  };
  return { ledger, flights };
}

describe('single-flight: a leader that leaves mid-stream', () => {
  let sim: TestSim;
  let gw: TestGateway;
  let seen: ReturnType<typeof observe>;
  before(async () => {
    // 16 tokens, 60 ms apart: about a second of stream to leave in the middle of.
    sim = await startTestSim({ sim: { mode: 'lorem', ttft_ms: 100, itl_ms: 60, output_tokens: 16 } });
    gw = await startTestGateway(
      demoConfig({
        tenants: [{ id: 'acme-corp', allowed_models: ['slow'], api_keys: [{ value: ACME_KEY }] }],
        models: {
          slow: {
            pricing: { input_per_million: 1000, output_per_million: 1000 },
            backends: [{ id: 'sim-slow', provider: 'openai', base_url: sim.baseURL, model: 'sim' }],
          },
        },
      }),
    );
    seen = observe(gw);
  });
  after(async () => {
    await gw.close();
    await sim.close();
  });

  it('followers get the whole stream; the leader is finished and billed at once; the entry is stored', async () => {
    const body = chatBody('leader leaves mid-stream', { stream: true });
    const calls = upstreamCalls(sim);
    const leader = leaveAfter(gw, body, 3);
    await sleep(40);
    // One follower joins before the first chunk, one in the middle of the stream.
    const early = post(gw, body);
    await sleep(200);
    const late = post(gw, body);
    const got = await leader;
    assert.ok(content(got).length > 0);

    // The leader's request is finished now, while its followers still stream: 499, billed as
    // partial for what it received, its in-flight slot given back.
    assert.ok(
      await eventually(() => seen.ledger.some((r) => !r.cache_hit)),
      "the leader's ledger record, right after it left",
    );
    const lead = seen.ledger.find((r) => !r.cache_hit);
    assert.equal(lead?.status, 499);
    assert.equal(lead?.partial, true);
    assert.equal(lead?.backend, 'sim-slow');
    assert.ok((lead?.tokens_out ?? 0) > 0 && (lead?.cost_usd ?? 0) > 0);
    assert.ok(await eventually(async () => (await inFlight(gw)) === 2), 'only the two followers in flight');

    const answers = await Promise.all([early, late]);
    for (const a of answers) {
      assert.equal(a.status, 200);
      // Before: the leader's upstream call was cancelled with it, and followers got an error event.
      assert.doesNotMatch(a.text, /"error"/, 'a complete answer, not a cut one');
      assert.match(a.text, /data: \[DONE\]\n\n$/);
      assert.equal(`${a.cache}/${a.tier ?? ''}`, 'hit/coalesced');
    }
    assert.equal(answers[0]?.text, answers[1]?.text, 'the same stream for both');
    assert.ok(
      answers[0]?.text.startsWith(got.slice(0, got.lastIndexOf('data: {'))),
      'the leader got its start',
    );
    assert.equal(upstreamCalls(sim) - calls, 1, 'one upstream call, kept for the followers');

    // Followers are billed as before: coalesced cache hits, the whole answer's tokens, no cost.
    const followers = seen.ledger.filter((r) => r.cache_hit);
    assert.equal(followers.length, 2);
    for (const r of followers) {
      assert.equal(r.status, 200);
      assert.equal(r.partial, undefined);
      assert.equal(r.cost_usd, 0);
      assert.equal(r.tokens_out, 16);
      assert.equal(r.backend, null);
    }
    assert.equal(await inFlight(gw), 0);

    // The completed stream was stored although its leader had left.
    const again = await post(gw, body);
    assert.equal(`${again.cache}/${again.tier ?? ''}`, 'hit/l1');
    assert.equal(again.text, answers[0]?.text);
    assert.equal(gw.gateway.cache.flights.size, 0);
  });

  it('a leader that leaves alone cancels the upstream call, and nothing is stored', async () => {
    const body = chatBody('leader leaves alone', { stream: true });
    const calls = upstreamCalls(sim);
    await leaveAfter(gw, body, 2);
    assert.ok(await eventually(() => sim.sim.running === 0), 'the upstream call is cancelled');
    assert.equal(gw.gateway.cache.flights.size, 0);
    const again = await post(gw, body);
    assert.equal(again.cache, 'miss');
    assert.equal(upstreamCalls(sim) - calls, 2);
  });
});

describe('single-flight: followers of a stalled leader leave on their own', () => {
  let sim: TestSim;
  let gw: TestGateway;
  let seen: ReturnType<typeof observe>;
  const config = (timeoutMs: number): Record<string, unknown> =>
    demoConfig({
      tenants: [{ id: 'acme-corp', allowed_models: ['slow'], api_keys: [{ value: ACME_KEY }] }],
      models: {
        slow: {
          timeout_ms: timeoutMs,
          backends: [{ id: 'sim-stalled', provider: 'openai', base_url: sim.baseURL, model: 'sim' }],
        },
      },
    });
  before(async () => {
    // Every call hangs before its first byte (until it is cancelled).
    sim = await startTestSim({ sim: { mode: 'lorem', output_tokens: 8, faults: { hang_rate: 1 } } });
    gw = await startTestGateway(config(60_000));
    seen = observe(gw);
  });
  after(async () => {
    await gw.close();
    await sim.close();
  });

  /** The simulator: hang before the first byte (`hang`), or stall `itlMs` between chunks. */
  function stall(hang: boolean, itlMs = 0): void {
    const faults = sim.sim.options.faults;
    assert.ok(faults);
    sim.sim.configure({ itl_ms: itlMs, faults: { ...faults, hang_rate: hang ? 1 : 0 } });
  }

  /** Reset between cases: the default deadline, a hang before the first byte. */
  async function reset(): Promise<void> {
    gw.gateway.applyConfig(await buildConfig(config(60_000), { env: {} }));
    stall(true);
  }

  for (const stream of [false, true]) {
    const kind = stream ? 'a stream follower' : 'a follower';
    it(`${kind} whose client leaves is finished at once, and leaves no waiter behind`, async () => {
      await reset();
      const flightsBefore = seen.flights.length;
      const ended = await upstreamEnded(gw);
      const body = chatBody(`stalled, follower leaves ${String(stream)}`, { stream });
      const leaderAc = new AbortController();
      const leader = abortable(gw, body, leaderAc.signal);
      await sleep(100);
      const followerAc = new AbortController();
      const follower = abortable(gw, body, followerAc.signal);
      await sleep(150);
      assert.ok(await eventually(async () => (await inFlight(gw)) === 2), 'leader and follower in flight');
      const flight = seen.flights[flightsBefore];
      assert.ok(flight && seen.flights.length === flightsBefore + 1, 'one flight');
      followerAc.abort();
      await follower;
      // Before: the follower waited on the flight until the leader's call ended (here, never).
      assert.ok(await eventually(async () => (await inFlight(gw)) === 1), 'the follower is finished');
      assert.equal(flight.waiting, 1, "only the leader's waiter is left");
      assert.equal(flight.readers, 1);
      assert.equal(flight.cancel.aborted, false, 'the upstream call goes on for the leader');
      assert.equal(await upstreamEnded(gw), ended);

      leaderAc.abort();
      await leader;
      // No one reads any more: the upstream call is cancelled and the flight is gone.
      assert.ok(await eventually(() => flight.cancel.aborted), 'cancelled once no one reads');
      assert.ok(await eventually(async () => (await upstreamEnded(gw)) === ended + 1), 'the call ended');
      assert.equal(
        await metric(
          gw,
          'portico_upstream_requests_total',
          'backend="sim-stalled",model="slow",status="aborted"',
        ),
        await upstreamEnded(gw),
        'recorded as aborted',
      );
      assert.ok(await eventually(async () => (await inFlight(gw)) === 0));
      assert.equal(gw.gateway.cache.flights.size, 0);
      assert.equal(flight.waiting, 0);
    });

    it(`${kind} leaves on its own deadline, before the leader's`, async () => {
      await reset();
      const body = chatBody(`stalled, follower deadline ${String(stream)}`, { stream });
      const leaderAc = new AbortController();
      const leader = abortable(gw, body, leaderAc.signal);
      await sleep(100);
      // The model's time limit is cut by a reload: the follower has 300 ms, the leader a minute.
      gw.gateway.applyConfig(await buildConfig(config(300), { env: {} }));
      const started = Date.now();
      const follower = await within(post(gw, body), 3000);
      // Before: the follower waited for the leader (a minute here) whatever its own limit.
      assert.notEqual(follower, 'timeout', 'the follower left on its own deadline');
      if (follower === 'timeout') return;
      assert.ok(Date.now() - started < 1500);
      assert.equal(follower.status, 504, follower.text);
      const err = (JSON.parse(follower.text) as { error: { code: string; message: string } }).error;
      assert.equal(err.code, 'upstream_timeout');
      assert.match(err.message, /limit of 300 ms/);
      assert.ok(await eventually(async () => (await inFlight(gw)) === 1), 'the follower is finished');
      assert.equal(await inFlight(gw), 1, 'the leader still waits');
      leaderAc.abort();
      await leader;
      assert.ok(await eventually(async () => (await inFlight(gw)) === 0));
      assert.equal(gw.gateway.cache.flights.size, 0);
    });
  }

  it('a stream follower whose deadline comes mid-stream gets what arrived, then the timeout event', async () => {
    await reset();
    // The first chunk at once, the next after a minute: the leader stalls mid-stream.
    stall(false, 60_000);
    const body = chatBody('stalled mid-stream', { stream: true });
    const leaderAc = new AbortController();
    const leader = abortable(gw, body, leaderAc.signal);
    await sleep(150);
    gw.gateway.applyConfig(await buildConfig(config(300), { env: {} }));
    const follower = await within(post(gw, body), 3000);
    assert.notEqual(follower, 'timeout', 'the follower left on its own deadline');
    if (follower === 'timeout') return;
    assert.equal(follower.status, 200);
    assert.equal(`${follower.cache}/${follower.tier ?? ''}`, 'hit/coalesced');
    assert.ok(content(follower.text).length > 0, 'the chunk that had arrived');
    assert.match(follower.text, /"code":"upstream_timeout"/);
    leaderAc.abort();
    await leader;
    assert.ok(await eventually(() => sim.sim.running === 0));
    assert.ok(await eventually(async () => (await inFlight(gw)) === 0));
  });
});
