/**
 * The token estimate of a multi-turn chat (src/tenancy/tokens.ts): countMessages, which counts
 * each distinct text once and remembers it, against the BPE run over every message of every
 * request. 40 chats of 20 turns from the built-in promptset (messages cut to 200 characters, a
 * new user message and a new answer per turn); every request resends the history so far, each
 * string a fresh copy as JSON.parse makes it. Same counts, checked.
 *
 * Usage: npx tsx bench/token-count-bench.ts [--rounds 5]
 */
import { createRequire } from 'node:module';
import { parseArgs } from 'node:util';
import { generatePromptset } from '../src/promptset/index.js';
import { countMessages, loadTokenizer } from '../src/tenancy/tokens.js';
import type { ChatMessage } from '../src/providers/openai-types.js';

const { values } = parseArgs({ options: { rounds: { type: 'string', default: '5' } } });
const bpe = (createRequire(import.meta.url)('gpt-tokenizer') as typeof import('gpt-tokenizer')).countTokens;
loadTokenizer();

const texts = generatePromptset({
  count: 400,
  seed: 7,
  scenario: 'chat',
  dataset: 'token-count',
}).records.map((r) => r.prompt.slice(0, 200));
const system = 'You are ACME design-first: architecture and UX before code. Keep answers focused.';

function requests(round: number): ChatMessage[][] {
  const out: ChatMessage[][] = [];
  for (let c = 0; c < 40; c++) {
    const history: ChatMessage[] = [{ role: 'system', content: system }];
    for (let turn = 0; turn < 20; turn++) {
      history.push({
        role: 'user',
        content: `${texts[(c * 41 + turn * 7) % texts.length]} (${round}.${c}.${turn})`,
      });
      out.push(history.map((m) => ({ ...m, content: (m.content as string).split('').join('') })));
      history.push({
        role: 'assistant',
        content: `Answer ${round}.${c}.${turn}: ${texts[(c * 13 + turn) % texts.length]}`,
      });
    }
  }
  return out;
}

/** OpenAI's chat framing over the BPE, every message counted (what tokens.ts did for texts under 256 characters). */
function uncached(messages: ChatMessage[]): number {
  let n = 3;
  for (const m of messages) n += 4 + bpe(m.content as string);
  return n;
}

const rows: Array<[number, number]> = [];
for (let r = 0; r < Number(values.rounds); r++) {
  const a = requests(r);
  const b = requests(r);
  let t0 = performance.now();
  let na = 0;
  for (const m of a) na += uncached(m);
  const tBpe = ((performance.now() - t0) * 1000) / a.length;
  t0 = performance.now();
  let nb = 0;
  for (const m of b) nb += countMessages(m);
  const tCached = ((performance.now() - t0) * 1000) / b.length;
  if (na !== nb) throw new Error(`counts differ: ${na} vs ${nb}`);
  rows.push([tBpe, tCached]);
}
const med = (xs: number[]): number => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)] as number;
console.log(
  `20-turn chats, ${rows.length} rounds of 800 requests: µs per request, median — every message through the BPE ${med(rows.map((r) => r[0])).toFixed(1)}, countMessages ${med(rows.map((r) => r[1])).toFixed(1)}`,
);
