/**
 * Traces end to end: a gateway exporting OTLP/HTTP to a receiver on loopback, the simulator over
 * HTTP as the backend. Checks the span tree of a chat request (root SERVER span continuing the
 * caller's traceparent; authenticate, admission, route, cache lookup, one CLIENT span per provider
 * attempt with gen_ai.* attributes, respond), that the attempt's context reached the backend as
 * traceparent, and that sampling follows sample_ratio for new traces and the caller's decision
 * for continued ones.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import {
  ACME_KEY,
  demoConfig,
  startTestGateway,
  startTestSim,
  type TestGateway,
  type TestSim,
} from '../support/gateway.js';

interface OtlpValue {
  stringValue?: string;
  intValue?: string | number;
  boolValue?: boolean;
  doubleValue?: number;
  arrayValue?: { values: OtlpValue[] };
}
interface OtlpSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  kind: number;
  attributes: Array<{ key: string; value: OtlpValue }>;
}

function attr(s: OtlpSpan, key: string): unknown {
  const v = s.attributes.find((a) => a.key === key)?.value;
  if (!v) return undefined;
  if (v.stringValue !== undefined) return v.stringValue;
  if (v.intValue !== undefined) return Number(v.intValue);
  if (v.boolValue !== undefined) return v.boolValue;
  if (v.doubleValue !== undefined) return v.doubleValue;
  return v.arrayValue?.values.map((x) => x.stringValue);
}

class Receiver {
  spans: OtlpSpan[] = [];
  server: Server = createServer((req, res) => {
    let body = '';
    req.on('data', (d: Buffer) => (body += d.toString()));
    req.on('end', () => {
      const parsed = JSON.parse(body) as {
        resourceSpans: Array<{ scopeSpans: Array<{ spans: OtlpSpan[] }> }>;
      };
      for (const rs of parsed.resourceSpans) for (const ss of rs.scopeSpans) this.spans.push(...ss.spans);
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{}');
    });
  });
  async start(): Promise<string> {
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', r));
    const a = this.server.address();
    return `http://127.0.0.1:${typeof a === 'object' && a ? a.port : 0}/v1/traces`;
  }
}

const TRACE_ID = '4bf92f3577b34da6a3ce929d0e0e4736';
const PARENT_ID = '00f067aa0ba902b7';

async function chat(
  gw: TestGateway,
  headers: Record<string, string> = {},
  extra: object = {},
): Promise<Response> {
  const res = await fetch(`${gw.baseURL}/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${ACME_KEY}`, 'content-type': 'application/json', ...headers },
    body: JSON.stringify({
      model: 'default',
      max_tokens: 8,
      messages: [{ role: 'user', content: 'trace me' }],
      ...extra,
    }),
  });
  await res.text();
  return res;
}

describe('OpenTelemetry traces', () => {
  const receiver = new Receiver();
  let sim: TestSim;
  let gw: TestGateway;
  let sampledNone: TestGateway;

  before(async () => {
    const endpoint = await receiver.start();
    sim = await startTestSim({ sim: { output_tokens: 6 }, recordRequests: 50 });
    const models = {
      default: {
        backends: [{ id: 'sim-http', provider: 'openai', base_url: sim.baseURL, model: 'sim' }],
        health_check: { enabled: false },
      },
    };
    gw = await startTestGateway(
      demoConfig({ models, telemetry: { tracing: { enabled: true, endpoint, sample_ratio: 1 } } }),
    );
    sampledNone = await startTestGateway(
      demoConfig({ models, telemetry: { tracing: { enabled: true, endpoint, sample_ratio: 0 } } }),
    );
  });
  after(async () => {
    await gw.close();
    await sampledNone.close();
    await sim.close();
    receiver.server.close();
  });

  it('a chat request yields the span tree, continuing the caller trace, with gen_ai attributes', async () => {
    const res = await chat(gw, { traceparent: `00-${TRACE_ID}-${PARENT_ID}-01` }, { temperature: 0 });
    assert.equal(res.status, 200);
    await gw.gateway.tracing?.flush();
    const spans = receiver.spans.filter((s) => s.traceId === TRACE_ID);
    const root = spans.find((s) => s.parentSpanId === PARENT_ID);
    assert.ok(root, `root span continuing the caller: ${spans.map((s) => s.name).join(', ')}`);
    assert.equal(root.name, 'POST /v1/chat/completions');
    assert.equal(root.kind, 2, 'SERVER');
    assert.equal(attr(root, 'portico.tenant'), 'acme-corp');
    assert.equal(attr(root, 'http.response.status_code'), 200);
    const children = spans.filter((s) => s.parentSpanId === root.spanId);
    const names = children.map((s) => s.name).sort();
    for (const n of ['authenticate', 'admission', 'route', 'cache.lookup', 'chat default', 'respond'])
      assert.ok(names.includes(n), `missing ${n} in ${names.join(', ')}`);
    const attempt = children.find((s) => s.name === 'chat default');
    assert.ok(attempt);
    assert.equal(attempt.kind, 3, 'CLIENT');
    assert.equal(attr(attempt, 'gen_ai.operation.name'), 'chat');
    assert.equal(attr(attempt, 'gen_ai.system'), 'openai');
    assert.equal(attr(attempt, 'gen_ai.request.model'), 'default');
    assert.equal(attr(attempt, 'portico.backend'), 'sim-http');
    assert.ok(Number(attr(attempt, 'gen_ai.usage.input_tokens')) > 0);
    assert.equal(attr(attempt, 'gen_ai.usage.output_tokens'), 6);
    // The attempt's context went upstream.
    const upstream = sim.received.at(-1)?.headers['traceparent'];
    assert.equal(upstream, `00-${TRACE_ID}-${attempt.spanId}-01`);
  });

  it('streams: the attempt span ends when the stream does, with usage', async () => {
    const before = receiver.spans.length;
    const res = await chat(gw, {}, { stream: true });
    assert.equal(res.status, 200);
    await gw.gateway.tracing?.flush();
    const fresh = receiver.spans.slice(before);
    const attempt = fresh.find((s) => s.name === 'chat default');
    assert.ok(attempt && attr(attempt, 'gen_ai.usage.output_tokens') === 6);
    assert.ok(fresh.some((s) => s.name === 'respond' && s.parentSpanId === attempt.parentSpanId));
  });

  it('sampling: ratio 0 records no new traces, but honours a sampled caller', async () => {
    const before = receiver.spans.length;
    await chat(sampledNone);
    await sampledNone.gateway.tracing?.flush();
    assert.equal(receiver.spans.length, before, 'unsampled: nothing exported');
    const other = 'a'.repeat(32);
    await chat(sampledNone, { traceparent: `00-${other}-${PARENT_ID}-01` });
    await sampledNone.gateway.tracing?.flush();
    assert.ok(receiver.spans.some((s) => s.traceId === other));
  });
});
