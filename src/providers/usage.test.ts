/**
 * The one reading of an upstream's usage (review, 2026-12-08): every shape the upstreams send gives
 * finite non-negative integers, the counts left out estimated and said so.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { inputUsageOf, normalizeUsage, tokenCount, wholeUsage } from './usage.js';

const chat = { prompt: () => 7, completion: () => 3 };
const input = { prompt: () => 11 };

describe('normalizeUsage', () => {
  it('a complete usage is taken as it is, extra fields kept', () => {
    const raw = {
      prompt_tokens: 10,
      completion_tokens: 5,
      total_tokens: 15,
      prompt_tokens_details: { cached_tokens: 4 },
    };
    assert.deepEqual(normalizeUsage(raw, chat), { usage: raw, estimated: false });
  });

  it("rerank's {total_tokens} only (vLLM, Jina) is the input", () => {
    assert.deepEqual(normalizeUsage({ total_tokens: 42 }, input), {
      usage: { prompt_tokens: 42, completion_tokens: 0, total_tokens: 42 },
      estimated: false,
    });
  });

  it('routes without output bill no completion, whatever the upstream says', () => {
    assert.deepEqual(
      normalizeUsage({ prompt_tokens: 8, total_tokens: 8, completion_tokens: 3 }, input)?.usage,
      {
        prompt_tokens: 8,
        completion_tokens: 0,
        total_tokens: 8,
      },
    );
  });

  it('a missing count is derived from the total when it can be, else estimated', () => {
    assert.deepEqual(normalizeUsage({ prompt_tokens: 10, total_tokens: 14 }, chat), {
      usage: { prompt_tokens: 10, completion_tokens: 4, total_tokens: 14 },
      estimated: false,
    });
    assert.deepEqual(normalizeUsage({ completion_tokens: 4, total_tokens: 14 }, chat), {
      usage: { prompt_tokens: 10, completion_tokens: 4, total_tokens: 14 },
      estimated: false,
    });
    assert.deepEqual(normalizeUsage({ prompt_tokens: 9 }, chat), {
      usage: { prompt_tokens: 9, completion_tokens: 3, total_tokens: 12 },
      estimated: true,
    });
    assert.deepEqual(normalizeUsage({ completion_tokens: 2 }, chat), {
      usage: { prompt_tokens: 7, completion_tokens: 2, total_tokens: 9 },
      estimated: true,
    });
    // Only a total: the output counted, the rest of the total is the prompt.
    assert.deepEqual(normalizeUsage({ total_tokens: 20 }, chat), {
      usage: { prompt_tokens: 17, completion_tokens: 3, total_tokens: 20 },
      estimated: true,
    });
  });

  it('counts that are no numbers are no counts; no count at all is undefined (the caller estimates)', () => {
    for (const raw of [undefined, null, 'x', [], {}, { meta: { billed_units: { search_units: 1 } } }])
      assert.equal(normalizeUsage(raw, chat), undefined, JSON.stringify(raw));
    assert.equal(
      normalizeUsage({ prompt_tokens: NaN, completion_tokens: '3', total_tokens: -1 }, chat),
      undefined,
    );
    const n = normalizeUsage({ prompt_tokens: 'nine', completion_tokens: 5, total_tokens: Infinity }, chat);
    assert.deepEqual(n, {
      usage: { prompt_tokens: 7, completion_tokens: 5, total_tokens: 12 },
      estimated: true,
    });
  });

  it('tokenCount: finite numbers >= 0, rounded and bounded', () => {
    assert.equal(tokenCount(3), 3);
    assert.equal(tokenCount(2.6), 3);
    assert.equal(tokenCount(0), 0);
    assert.equal(tokenCount(1e300), Number.MAX_SAFE_INTEGER);
    for (const v of [-1, NaN, Infinity, '4', null, undefined]) assert.equal(tokenCount(v), undefined);
  });
});

describe("wholeUsage (the hot paths' shortcut)", () => {
  it('takes whole counts as they are, and agrees with normalizeUsage wherever it takes one', () => {
    const shapes: unknown[] = [
      {
        prompt_tokens: 10,
        completion_tokens: 5,
        total_tokens: 15,
        prompt_tokens_details: { cached_tokens: 4 },
      },
      { prompt_tokens: 0, completion_tokens: 0, total_tokens: 0 },
      { prompt_tokens: 10, completion_tokens: 5, total_tokens: 99 },
      { prompt_tokens: 10.5, completion_tokens: 5, total_tokens: 15 },
      { prompt_tokens: 10, completion_tokens: -1, total_tokens: 9 },
      { prompt_tokens: 10, completion_tokens: 5 },
      { total_tokens: 42 },
      { prompt_tokens: '10', completion_tokens: 5, total_tokens: 15 },
      { prompt_tokens: Number.NaN, completion_tokens: 5, total_tokens: 15 },
      { prompt_tokens: 2 ** 60, completion_tokens: 5, total_tokens: 15 },
      {},
      null,
      'usage',
    ];
    let taken = 0;
    for (const raw of shapes) {
      const u = wholeUsage(raw);
      if (u === undefined) continue;
      taken++;
      assert.equal(u, raw, 'the same object: nothing copied');
      assert.deepEqual(normalizeUsage(raw, chat), { usage: raw, estimated: false }, JSON.stringify(raw));
    }
    assert.equal(taken, 3);
  });
});

describe('inputUsageOf (embeddings and rerank answers)', () => {
  it("reads Cohere's meta input tokens: billed_units first, else tokens", () => {
    const billed = { results: [], meta: { billed_units: { input_tokens: 37, search_units: 1 } } };
    assert.deepEqual(normalizeUsage(inputUsageOf(billed), input), {
      usage: { prompt_tokens: 37, completion_tokens: 0, total_tokens: 37 },
      estimated: false,
    });
    const both = { meta: { billed_units: { input_tokens: 30 }, tokens: { input_tokens: 31 } } };
    assert.deepEqual(inputUsageOf(both), { prompt_tokens: 30, total_tokens: 30 });
    assert.deepEqual(inputUsageOf({ meta: { tokens: { input_tokens: 12, output_tokens: 0 } } }), {
      prompt_tokens: 12,
      total_tokens: 12,
    });
  });

  it('a usage with a count wins over meta; one without a count does not', () => {
    const u = { total_tokens: 42 };
    assert.equal(inputUsageOf({ usage: u, meta: { billed_units: { input_tokens: 7 } } }), u);
    assert.deepEqual(inputUsageOf({ usage: {}, meta: { billed_units: { input_tokens: 7 } } }), {
      prompt_tokens: 7,
      total_tokens: 7,
    });
  });

  it('search units alone, or counts that are no numbers, are no count: the caller estimates', () => {
    for (const answer of [
      { meta: { billed_units: { search_units: 1 } } },
      { meta: { billed_units: { input_tokens: 'x' } } },
      { meta: { billed_units: { input_tokens: -1 }, tokens: null } },
      { meta: [] },
      {},
      null,
      'answer',
    ])
      assert.equal(normalizeUsage(inputUsageOf(answer), input), undefined, JSON.stringify(answer));
  });
});
