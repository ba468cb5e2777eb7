/**
 * Metric cardinality stays bounded: 10,000 requests with random model names, random user ids,
 * random keys and random paths add no series beyond the configured tenants and models (plus the
 * fixed sentinels _anonymous, _unknown and _unmatched). Requests go through Fastify's inject
 * (the whole HTTP pipeline without sockets) to keep the test fast.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { ACME_KEY, CLOSED_KEY, demoConfig, startTestGateway, type TestGateway } from '../support/gateway.js';

const rnd = (): string => randomBytes(6).toString('hex');

function series(text: string): Map<string, Set<string>> {
  const labels = new Map<string, Set<string>>();
  for (const line of text.split('\n')) {
    if (line.startsWith('#') || !line) continue;
    const m = /^[a-zA-Z_:][a-zA-Z0-9_:]*\{(.*)\}/.exec(line);
    if (!m?.[1]) continue;
    for (const pair of m[1].matchAll(/([a-zA-Z_]+)="((?:[^"\\]|\\.)*)"/g)) {
      const [, k, v] = pair;
      if (!k || v === undefined) continue;
      const set = labels.get(k) ?? new Set<string>();
      set.add(v);
      labels.set(k, set);
    }
  }
  return labels;
}

describe('metric cardinality', () => {
  let gw: TestGateway;
  before(async () => {
    gw = await startTestGateway(demoConfig());
  });
  after(async () => gw.close());

  it('10,000 requests with random models, users, keys and paths add no series', async () => {
    const app = gw.app;
    const send = async (i: number): Promise<void> => {
      const kind = i % 5;
      if (kind === 4) {
        await app.inject({ method: 'GET', url: `/${rnd()}/${rnd()}` });
        return;
      }
      const key = kind === 3 ? `sk-${rnd()}` : i % 2 ? ACME_KEY : CLOSED_KEY;
      await app.inject({
        method: 'POST',
        url: '/v1/chat/completions',
        headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
        payload: {
          model: kind === 0 ? 'default' : `model-${rnd()}`,
          user: `user-${rnd()}`,
          max_tokens: 4,
          messages: [{ role: 'user', content: 'hi' }],
        },
      });
    };
    const scrape = async (): Promise<string> => (await app.inject({ method: 'GET', url: '/metrics' })).body;
    for (let i = 0; i < 1_000; i++) await send(i);
    await scrape(); // the scrape itself adds its own http_* series once
    const early = await scrape();
    const earlyCount = early.split('\n').filter((l) => l && !l.startsWith('#')).length;
    for (let i = 1_000; i < 10_000; i++) await send(i);
    const late = await scrape();
    const lateCount = late.split('\n').filter((l) => l && !l.startsWith('#')).length;
    assert.equal(lateCount, earlyCount, 'no new series after the first 1,000 requests');

    const labels = series(late);
    const allowed = (name: string, values: string[]): void => {
      for (const v of labels.get(name) ?? []) assert.ok(values.includes(v), `${name}="${v}" is not bounded`);
    };
    allowed('tenant', ['acme-corp', 'closed-ai', '_anonymous']);
    allowed('model', ['default', '_unknown']);
    allowed('endpoint', ['/v1/chat/completions', '/metrics', '_unmatched']);
    for (const banned of ['user', 'key', 'api_key', 'request_id']) assert.ok(!labels.has(banned), banned);
    assert.ok(labels.get('endpoint')?.has('_unmatched'), 'unmatched paths are counted under one label');
  });
});
