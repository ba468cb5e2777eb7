/**
 * Drill quota-prompt-estimate (issue 15): how far a backend's prompt-token count can exceed the
 * gateway's estimate (gpt-tokenizer o200k + OpenAI's chat framing, src/tenancy/tokens.ts). A
 * reservation caps the answer at what is left after the ESTIMATED prompt, so this difference is
 * the only way a tenant's recorded tokens can pass its quota: at most the sum of the per-request
 * excesses, i.e. at most (worst relative excess) x (prompt tokens admitted) <= that share of the
 * quota. Measured over the built-in promptset (definitions, explanations, code, summaries,
 * text-to-SQL; each with three system prompts) and a few prompts in other languages, against:
 *  - the simulator's count (what the other quota drills run against);
 *  - cl100k BPE with OpenAI's framing (GPT-4 / GPT-3.5-class backends);
 *  - the Llama 3 chat template and ChatML (Qwen-style) framing, with cl100k for the text: their
 *    own vocabularies are not available offline; Llama 3's contains cl100k's, so these rows measure
 *    the framing exactly and the text approximately;
 *  - GPT-2's r50k BPE with ChatML framing: a small-vocabulary tokenizer.
 */
import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { countTokens as cl100k } from 'gpt-tokenizer/encoding/cl100k_base';
import { countTokens as r50k } from 'gpt-tokenizer/encoding/r50k_base';
import { generatePromptset } from '../../src/promptset/index.js';
import { countMessages } from '../../src/tenancy/tokens.js';
import { countPromptTokens } from '../../src/sim/generate.js';
import type { ChatMessage } from '../../src/providers/openai-types.js';
import { drillSize, recordDrill, type DrillFigure } from './support.js';

const SYSTEM_PROMPTS = [
  'You are ACME design-first: architecture and UX before code.',
  'You answer briefly.',
  '',
];
const OTHER_LANGUAGES = [
  'Erkläre mir bitte, wie ein Ratenbegrenzer in einem API-Gateway funktioniert.',
  "Explique-moi ce qu'est un quota de jetons et pourquoi il est réinitialisé à minuit UTC.",
  '¿Qué es un balanceador de carga y cuándo conviene usar afinidad por prefijo?',
  'トークンの割り当てがなくなったときに何が起こるかを説明してください。',
  '请解释一下什么是令牌桶算法，以及它如何限制每秒请求数。',
  'Объясните, что такое автоматический выключатель в распределённых системах.',
  'कृपया बताइए कि एपीआई गेटवे में दर सीमा कैसे काम करती है।',
  'اشرح لي كيف تعمل حصة الرموز اليومية في بوابة واجهة برمجة التطبيقات.',
];

type Messages = Array<{ role: 'system' | 'user'; content: string }>;

/** How each modelled backend counts a chat prompt. */
const BACKENDS: Array<{ name: string; count: (m: Messages) => number }> = [
  { name: 'simulator (words)', count: (m) => countPromptTokens(m as ChatMessage[]) },
  {
    name: 'cl100k, OpenAI framing',
    count: (m) => 3 + m.reduce((n, x) => n + 4 + cl100k(x.content), 0),
  },
  {
    // <|begin_of_text|> (<|start_header_id|>role<|end_header_id|>\n\n text <|eot_id|>)* + the assistant header
    name: 'Llama 3 template (cl100k text)',
    count: (m) => 1 + m.reduce((n, x) => n + 4 + cl100k(x.role) + cl100k(x.content), 0) + 4,
  },
  {
    // (<|im_start|>role\n text <|im_end|>\n)* + <|im_start|>assistant\n
    name: 'ChatML template (cl100k text)',
    count: (m) => m.reduce((n, x) => n + 4 + cl100k(x.role) + cl100k(x.content), 0) + 3,
  },
  {
    name: 'ChatML template (r50k text)',
    count: (m) => m.reduce((n, x) => n + 4 + r50k(x.role) + r50k(x.content), 0) + 3,
  },
];

/** The bounds docs/tenancy.md states (the full-size run measured below them). */
const ENGLISH_BOUND = { relative: 0.4, tokens: 30 };
const OTHER_LANGUAGES_BOUND = { relative: 3.2, tokens: 80 };

interface Stat {
  n: number;
  worstTokens: number;
  worstRelative: number;
  aggregate: number;
}

function measure(corpus: Messages[], count: (m: Messages) => number): Stat {
  let worstTokens = Number.NEGATIVE_INFINITY;
  let worstRelative = Number.NEGATIVE_INFINITY;
  let excess = 0;
  let estimated = 0;
  for (const m of corpus) {
    const est = countMessages(m as ChatMessage[]);
    const d = count(m) - est;
    worstTokens = Math.max(worstTokens, d);
    worstRelative = Math.max(worstRelative, d / est);
    excess += d;
    estimated += est;
  }
  return { n: corpus.length, worstTokens, worstRelative, aggregate: excess / estimated };
}

const pct = (x: number): string => `${(x * 100).toFixed(1)}%`;

describe('drill quota-prompt-estimate: how far a backend can count more prompt tokens than the gateway', () => {
  const figures: DrillFigure[] = [];
  const withSystem = (user: string): Messages[] =>
    SYSTEM_PROMPTS.map((s) =>
      s
        ? [
            { role: 'system', content: s },
            { role: 'user', content: user },
          ]
        : [{ role: 'user', content: user }],
    );
  const english = generatePromptset({
    seed: 15,
    scenario: 'quota',
    dataset: 'estimate',
    count: drillSize(300, 3000),
  }).records.flatMap((r) => withSystem(r.prompt));
  const other = OTHER_LANGUAGES.flatMap(withSystem);

  after(async () => {
    await recordDrill('quota-prompt-estimate', {
      title: `backend prompt count minus the gateway's estimate, ${english.length} English and ${other.length} other-language prompts`,
      guarantee:
        'tokens recorded <= quota + the prompt-estimate excess; with the simulator the excess is never positive, and for the modelled backends it stays within the bounds docs/tenancy.md states',
      figures,
      notes: [
        'estimate = gpt-tokenizer o200k + 3 + 4 per message (OpenAI framing); relative = excess / estimate of the same prompt',
        'Llama 3 and ChatML rows count the text with cl100k (their own vocabularies are not available offline); the framing tokens are exact',
        'aggregate = total excess / total estimate over the corpus: the expected overshoot share of the prompt tokens admitted',
      ],
    });
  });

  it('the simulator never counts more than the estimate (the quota drills run at tolerance 0)', () => {
    const count = BACKENDS[0]?.count;
    assert.ok(count);
    const s = measure([...english, ...other], count);
    figures.push({
      label: 'simulator: worst excess over the estimate',
      value: s.worstTokens,
      unit: 'tokens',
      bound: '<= 0',
      ok: s.worstTokens <= 0,
    });
    assert.ok(s.worstTokens <= 0, `the simulator counted ${s.worstTokens} more`);
  });

  for (const b of BACKENDS.slice(1)) {
    it(`${b.name}: within the stated bounds`, () => {
      for (const [label, corpus, bound] of [
        ['English', english, ENGLISH_BOUND],
        ['other languages', other, OTHER_LANGUAGES_BOUND],
      ] as const) {
        const s = measure(corpus, b.count);
        const ok = s.worstRelative <= bound.relative && s.worstTokens <= bound.tokens;
        figures.push({
          label: `${b.name}, ${label}: worst excess per request`,
          value: `${s.worstTokens} tokens (${pct(s.worstRelative)} of the estimate); aggregate ${pct(s.aggregate)}`,
          bound: `<= ${bound.tokens} tokens and <= ${pct(bound.relative)}`,
          ok,
        });
        assert.ok(ok, `${b.name}, ${label}: ${s.worstTokens} tokens, ${pct(s.worstRelative)}`);
      }
    });
  }
});
