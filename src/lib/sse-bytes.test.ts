import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  completeEventsEnd,
  firstEventError,
  modelOf,
  replaceModel,
  scanEvents,
  textOfSse,
  usageOf,
  type ScanState,
} from './sse-bytes.js';

const b = (s: string): Buffer => Buffer.from(s);

describe('sse-bytes', () => {
  it('finds where complete events end (LF and CRLF)', () => {
    assert.equal(completeEventsEnd(b('data: {}\n\ndata: {"a"')), 10);
    assert.equal(completeEventsEnd(b('data: {}\r\n\r\n')), 12);
    assert.equal(completeEventsEnd(b('data: {"a":1}')), 0);
  });

  it('forwards untouched bytes as the same buffer', () => {
    const buf = b('data: {"model":"m","choices":[{"delta":{"content":"x"}}]}\n\n');
    const st: ScanState = { done: false };
    assert.equal(scanEvents(buf, buf.length, { modelJson: b('"m"'), hideUsage: true }, st), buf);
    assert.equal(st.done, false);
  });

  it('sees [DONE] only as the sentinel line, not inside content', () => {
    const inContent = b('data: {"choices":[{"delta":{"content":"data: [DONE]"}}]}\n\n');
    const st: ScanState = { done: false };
    scanEvents(inContent, inContent.length, { modelJson: undefined, hideUsage: false }, st);
    assert.equal(st.done, false);
    const done = b('data:[DONE]\r\n\r\n');
    scanEvents(done, done.length, { modelJson: undefined, hideUsage: false }, st);
    assert.equal(st.done, true);
  });

  it('rewrites model values (with or without spaces), hides usage, keeps the usage', () => {
    const buf = b(
      'data: {"model": "up", "choices":[{"delta":{"content":"\\"model\\": \\"up\\""}}], "usage": null}\n\n' +
        'data: {"model":"up","choices":[],"usage":{"prompt_tokens":1,"completion_tokens":2,"total_tokens":3}}\n\n',
    );
    const st: ScanState = { done: false };
    const out = scanEvents(buf, buf.length, { modelJson: b('"alias"'), hideUsage: true }, st).toString();
    assert.equal(
      out,
      'data: {"model": "alias", "choices":[{"delta":{"content":"\\"model\\": \\"up\\""}}]}\n\n',
    );
    assert.deepEqual(st.usage, { prompt_tokens: 1, completion_tokens: 2, total_tokens: 3 });
    assert.equal(st.upstreamModel, 'up');
  });

  it('rewrites every event of a read into one buffer, byte for byte what the alias would give', () => {
    // The common pass-through read: several chunks, each naming the upstream model (some already
    // the alias), content quoting "model" keys; with and without a usage chunk to hide.
    for (const withUsage of [false, true]) {
      for (let n = 1; n <= 6; n++) {
        const events: string[] = [];
        const expected: string[] = [];
        for (let i = 0; i < n; i++) {
          const model = i % 3 === 2 ? 'alias' : 'up-model';
          const content = `piece ${i} \\"model\\": \\"x\\" é`;
          const ev = (m: string): string =>
            `data: {"id":"c","model":"${m}","choices":[{"delta":{"content":"${content}"}}]}\n\n`;
          events.push(ev(model));
          expected.push(ev('alias'));
        }
        if (withUsage) events.push('data: {"model":"up-model","choices":[],"usage":{"total_tokens":3}}\n\n');
        const buf = b(events.join(''));
        const st: ScanState = { done: false };
        const out = scanEvents(buf, buf.length, { modelJson: b('"alias"'), hideUsage: true }, st);
        assert.equal(out.toString(), expected.join(''), `${n} events, usage ${withUsage}`);
        assert.equal(st.upstreamModel, 'up-model');
        if (withUsage) assert.deepEqual(st.usage, { total_tokens: 3 });
      }
    }
  });

  it('edits in place when the alias is no longer than the name it replaces, never past the events scanned', () => {
    const events = 'data: {"model":"upstream-model-1","choices":[{"delta":{"content":"a"}}]}\n\n'.repeat(3);
    const partial = 'data: {"model":"upstream-model-1","cho';
    for (const alias of ['m', 'upstream-model-1', 'a-much-longer-alias-than-the-upstream-name']) {
      const buf = b(events + partial);
      const st: ScanState = { done: false };
      const end = events.length;
      const out = scanEvents(buf, end, { modelJson: b(JSON.stringify(alias)), hideUsage: true }, st);
      assert.equal(out.toString(), events.replaceAll('upstream-model-1', alias), alias);
      // The incomplete event after `end` (kept for the next read) is untouched either way.
      assert.equal(buf.subarray(end).toString(), partial, alias);
      if (alias.length <= 'upstream-model-1'.length) {
        // In place: the output is the front of the read's own buffer (no copy).
        assert.equal(out.buffer, buf.buffer, alias);
        assert.equal(out.byteOffset, buf.byteOffset, alias);
      } else
        assert.equal(
          buf.subarray(0, end).toString(),
          events,
          'a longer alias is copied, the read left alone',
        );
    }
    const json = b('{"id":"x","model":"upstream-model-1","choices":[],"usage":{"total_tokens":1}}');
    const r = replaceModel(json, b('"m"'));
    assert.equal(r.body.toString(), '{"id":"x","model":"m","choices":[],"usage":{"total_tokens":1}}');
    assert.equal(r.upstream, 'upstream-model-1');
  });

  it('stops at an error event', () => {
    const buf = b('data: {"choices":[]}\n\ndata: {"error":{"message":"x","code":500}}\n\n');
    const st: ScanState = { done: false };
    const out = scanEvents(buf, buf.length, { modelJson: undefined, hideUsage: false }, st).toString();
    assert.equal(out, 'data: {"choices":[]}\n\n');
    assert.equal(st.errorData, '{"error":{"message":"x","code":500}}');
    assert.equal(
      firstEventError(b(': ping\n\ndata: {"error":{"message":"x"}}\n\n')),
      '{"error":{"message":"x"}}',
    );
    assert.equal(firstEventError(b('data: {"error":null,"choices":[]}\n\n')), undefined);
  });

  it('decodes the delivered text and the first model', () => {
    const parts = [
      b('data: {"model":"m1","choices":[{"delta":{"content":"Hé"}}]}\n\n'),
      b('data: {"choices":[{"text":"llo"}]}\n\ndata: [DONE]\n\n'),
    ];
    assert.equal(textOfSse(parts), 'Héllo');
    assert.equal(modelOf(parts[0] as Buffer), 'm1');
  });

  it('JSON answers: usage by a targeted scan, model replaced', () => {
    const body = b(
      '{"id":"x","model":"up","choices":[{"message":{"content":"a \\"usage\\": {1}"}}],"usage":{"prompt_tokens":4,"completion_tokens":5,"total_tokens":9,"prompt_tokens_details":{"cached_tokens":0}}}',
    );
    assert.deepEqual(usageOf(body), {
      prompt_tokens: 4,
      completion_tokens: 5,
      total_tokens: 9,
      prompt_tokens_details: { cached_tokens: 0 },
    });
    assert.equal(usageOf(b('{"choices":[]}')), undefined);
    const r = replaceModel(body, b('"alias"'));
    assert.equal(r.upstream, 'up');
    assert.equal((JSON.parse(r.body.toString()) as { model: string }).model, 'alias');
    assert.equal(replaceModel(body, b('"up"')).body, body);
  });

  it('CRLF events, a model key that is also a value, keys cut by the end of the read', () => {
    const st: ScanState = { done: false };
    const opts = { modelJson: b('"alias"'), hideUsage: true };
    // CRLF delimiters; the value "model" of a key "model" is not itself a key; `"usage":null` cut.
    const crlf = b(
      'data: {"model":"model","choices":[{"delta":{"content":"x"}}],"usage":null}\r\n\r\n' +
        'data: {"model":"up","choices":[],"usage":{"total_tokens":3}}\r\n\r\n',
    );
    assert.equal(completeEventsEnd(crlf), crlf.length);
    assert.equal(
      scanEvents(crlf, crlf.length, opts, st).toString(),
      'data: {"model":"alias","choices":[{"delta":{"content":"x"}}]}\r\n\r\n',
    );
    assert.equal(st.upstreamModel, 'model');
    assert.deepEqual(st.usage, { total_tokens: 3 });
    // A read that ends inside an event: only the complete events are scanned; a `"model"` key cut
    // by `end` is not rewritten (it will be, whole, in the next read).
    const cut = b('data: {"model":"up"}\n\ndata: {"mod');
    const end = completeEventsEnd(cut);
    assert.equal(end, 'data: {"model":"up"}\n\n'.length);
    assert.equal(scanEvents(cut, end, opts, { done: false }).toString(), 'data: {"model":"alias"}\n\n');
    // No blank line at all: nothing complete.
    assert.equal(completeEventsEnd(b('data: {"a":1}\r\n')), 0);
    assert.equal(completeEventsEnd(b('\n\r\n')), 0);
  });

  it('leaves a model value that is not closed inside its event alone, and the events around it intact', () => {
    const opts = { modelJson: b('"al"'), hideUsage: false };
    const st: ScanState = { done: false };
    // The first read names the upstream model; later reads are scanned event by event.
    const r1 = b('data: {"model":"gpt-4o-2024","choices":[]}\n\n');
    assert.equal(scanEvents(r1, r1.length, opts, st).toString(), 'data: {"model":"al","choices":[]}\n\n');
    // A malformed event (its model value runs into the next event) before a usage event. The
    // value's closing quote found in the next event used to make a piece that ended before it
    // started: the output went back over bytes already written (or threw a RangeError).
    const bad = 'data: {"model":"gpt-4o-2024\n\n';
    const r2 = b(`${bad}data: {"id":"x","model":"gpt-4o-2024","usage":{"prompt_tokens":1}}\n\n`);
    const out = scanEvents(r2, r2.length, opts, st).toString();
    assert.equal(out, `${bad}data: {"id":"x","model":"al","usage":{"prompt_tokens":1}}\n\n`);
    assert.deepEqual(st.usage, { prompt_tokens: 1 });
    // A JSON answer cut inside a second model value: the first is rewritten, the cut one kept.
    const cut = replaceModel(b('{"model":"gpt-4o-2024","x":{"model":"gpt-4'), b('"al"'));
    assert.equal(cut.body.toString(), '{"model":"al","x":{"model":"gpt-4');
    assert.equal(modelOf(b('data: {"model":"gpt-4')), undefined);
  });

  it('[DONE] counts only as a line of its own, in any event of the read', () => {
    const opts = { modelJson: undefined, hideUsage: false };
    for (const [text, done] of [
      ['data: {"choices":[]}\n\ndata: [DONE]\n\n', true],
      ['data: {"choices":[]}\r\n\r\ndata:[DONE]\r\n\r\n', true],
      ['data: [DONE] \n\n', false],
      ['xdata: [DONE]\n\n', false],
      ['data: {"choices":[{"delta":{"content":"[DONE]"}}]}\n\n', false],
    ] as const) {
      const st: ScanState = { done: false };
      const buf = b(text);
      assert.equal(scanEvents(buf, buf.length, opts, st), buf, text);
      assert.equal(st.done, done, text);
    }
  });
});
