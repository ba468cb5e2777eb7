import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { PorticoError } from '../../errors/portico-error.js';
import { readSseMessages } from './read-sse.js';

async function* bytes(...parts: string[]): AsyncGenerator<Uint8Array> {
  for (const p of parts) yield new TextEncoder().encode(p);
}

async function read(...parts: string[]): Promise<string[]> {
  const out: string[] = [];
  for await (const m of readSseMessages(bytes(...parts))) out.push(`${m.event ?? ''}:${m.data}`);
  return out;
}

describe('readSseMessages', () => {
  it('ignores what the SSE spec says to ignore: unknown fields, a bad retry value (review, 2026-12-07)', async () => {
    // Before: "Malformed event stream from backend" on the `retry: soon` line.
    assert.deepEqual(await read('retry: soon\nfoo: bar\nevent: ping\ndata: {}\n\n', 'data: {"a":1}\n\n'), [
      'ping:{}',
      ':{"a":1}',
    ]);
  });

  it('an event over the size bound still ends the stream as malformed', async () => {
    const huge = `data: ${'x'.repeat(9 * 1024 * 1024)}`;
    await assert.rejects(
      read(huge),
      (e: unknown) => e instanceof PorticoError && e.code === 'upstream_error',
    );
  });
});
