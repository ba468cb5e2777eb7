/**
 * The simulator's "model": deterministic text (same request -> same answer), an echo mode that
 * answers with what it received, tool calls built from the tool's JSON schema, embeddings and
 * rerank scores. One "token" here is one whitespace-separated word (with its trailing space), so
 * streamed chunks concatenate exactly to the non-streamed text.
 */
import { fnv1a32 } from '../lib/hash.js';
import { mulberry32 } from '../lib/prng.js';
import type {
  ChatMessage,
  ContentPart,
  ToolCall,
  ToolDefinition,
  ToolChoice,
} from '../providers/openai-types.js';

const WORDS = (
  'the gateway routes each request to a healthy backend while tenants keep their own prompts quotas and ' +
  'limits so latency stays low and every token is counted design code test ship measure cache stream model ' +
  'answer question system user prompt budget replica queue retry circuit health metric trace audit pool split'
).split(' ');

export function messageText(content: ChatMessage['content']): string {
  if (content === null || content === undefined) return '';
  if (typeof content === 'string') return content;
  return content
    .map((p: ContentPart) =>
      p.type === 'text' && typeof (p as { text?: unknown }).text === 'string'
        ? (p as { text: string }).text
        : `[${p.type}]`,
    )
    .join('');
}

export function countWords(text: string): number {
  let n = 0;
  let inWord = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    const space = c === 32 || c === 10 || c === 9 || c === 13;
    if (!space && !inWord) n++;
    inWord = !space;
  }
  return n;
}

/** Prompt tokens as the simulator counts them: words plus 4 per message of framing. */
export function countPromptTokens(messages: ChatMessage[]): number {
  let n = 0;
  for (const m of messages) n += 4 + countWords(messageText(m.content));
  return n;
}

/** Split text into word tokens keeping whitespace attached, so concatenation is lossless. */
export function splitTokens(text: string): string[] {
  const out = text.match(/\S+\s*|\s+/g);
  return out ?? [];
}

export function loremText(seedText: string, seed: number, tokens: number): string {
  const rnd = mulberry32(fnv1a32(seedText, (0x811c9dc5 ^ seed) >>> 0));
  const words: string[] = [];
  for (let i = 0; i < tokens; i++) words.push(WORDS[Math.floor(rnd() * WORDS.length)] as string);
  const s = words.join(' ');
  return s.charAt(0).toUpperCase() + s.slice(1) + '.';
}

export function echoText(messages: ChatMessage[]): string {
  return messages.map((m) => `[${m.role}] ${messageText(m.content)}`).join('\n');
}

/**
 * Which tool (if any) the simulator should call. A forced choice (`required`, a named function)
 * always calls; `auto` calls a tool the user's message names, and only when the conversation ends
 * with that user message: after a tool result the model answers in text, so agent loops
 * (`runTools()`, multi-step SDK loops) end as they do with a real model.
 */
export function chooseTool(
  tools: ToolDefinition[] | undefined,
  choice: ToolChoice | undefined,
  lastUser: string,
  lastIsUser = true,
): ToolDefinition | undefined {
  if (!tools || tools.length === 0 || choice === 'none') return undefined;
  if (typeof choice === 'object' && choice !== null)
    return tools.find((t) => t.function.name === choice.function.name);
  if (choice === 'required') return tools[0];
  if (!lastIsUser) return undefined;
  const lower = lastUser.toLowerCase();
  return tools.find((t) => lower.includes(t.function.name.toLowerCase()));
}

type Schema = {
  type?: unknown;
  properties?: Record<string, unknown>;
  required?: unknown;
  enum?: unknown[];
  const?: unknown;
  items?: unknown;
  prefixItems?: unknown;
  minItems?: unknown;
  minLength?: unknown;
  maxLength?: unknown;
  minimum?: unknown;
  maximum?: unknown;
  exclusiveMinimum?: unknown;
  format?: unknown;
  pattern?: unknown;
  anyOf?: unknown;
  oneOf?: unknown;
  allOf?: unknown;
  $ref?: unknown;
  $defs?: Record<string, unknown>;
  definitions?: Record<string, unknown>;
};

const FORMATS: Record<string, string> = {
  'date-time': '2025-01-01T00:00:00Z',
  date: '2025-01-01',
  time: '00:00:00Z',
  email: 'sim@example.com',
  uri: 'https://example.com/sim',
  url: 'https://example.com/sim',
  uuid: '00000000-0000-4000-8000-000000000000',
  ipv4: '127.0.0.1',
  hostname: 'example.com',
};

/** Resolves a local `$ref` (`#/$defs/X`, `#/definitions/X`, `#`) against the root schema. */
function deref(s: Schema, root: Schema): Schema {
  let cur = s;
  for (let i = 0; i < 8 && typeof cur.$ref === 'string'; i++) {
    const ref = cur.$ref;
    if (!ref.startsWith('#')) return {};
    let target: unknown = root;
    for (const seg of ref.slice(1).split('/').filter(Boolean))
      target =
        typeof target === 'object' && target !== null
          ? (target as Record<string, unknown>)[
              decodeURIComponent(seg.replace(/~1/g, '/').replace(/~0/g, '~'))
            ]
          : undefined;
    cur = typeof target === 'object' && target !== null ? (target as Schema) : {};
  }
  return cur;
}

/**
 * A value that validates against a JSON schema (the subset structured outputs use: objects with
 * required properties, arrays, enums/const, anyOf/oneOf, $ref, string formats and bounds), with
 * text drawn from `word` so answers vary with the prompt. Deterministic.
 */
export function sampleFromSchema(
  schema: unknown,
  word: () => string = () => 'sim',
  depth = 0,
  root?: unknown,
): unknown {
  if (depth > 8 || schema === null || typeof schema !== 'object') return null;
  const r = (root ?? schema) as Schema;
  const s = deref(schema as Schema, r);
  if (s.const !== undefined) return s.const;
  if (Array.isArray(s.enum) && s.enum.length > 0) return s.enum[0];
  const branches = Array.isArray(s.anyOf) ? s.anyOf : Array.isArray(s.oneOf) ? s.oneOf : undefined;
  if (branches && branches.length > 0) {
    // Prefer a branch that is not null (a nullable field gets a real value).
    const b = branches.find((x) => (x as Schema | null)?.type !== 'null') ?? branches[0];
    return sampleFromSchema(b, word, depth + 1, r);
  }
  if (Array.isArray(s.allOf) && s.allOf.length > 0) {
    const merged: Schema = {};
    for (const part of s.allOf) Object.assign(merged, deref(part as Schema, r));
    return sampleFromSchema(merged, word, depth + 1, r);
  }
  let type = s.type;
  if (Array.isArray(type)) type = type.find((t) => t !== 'null') ?? type[0];
  if (type === undefined) type = s.properties ? 'object' : s.items ? 'array' : 'string';
  const num = (v: unknown): number | undefined => (typeof v === 'number' ? v : undefined);
  switch (type) {
    case 'string': {
      if (typeof s.format === 'string' && FORMATS[s.format] !== undefined) return FORMATS[s.format];
      let text = word();
      const min = num(s.minLength) ?? 0;
      while (text.length < min) text += ` ${word()}`;
      const max = num(s.maxLength);
      return max !== undefined ? text.slice(0, max) : text;
    }
    case 'integer':
    case 'number': {
      const min =
        num(s.minimum) ??
        (num(s.exclusiveMinimum) !== undefined ? (num(s.exclusiveMinimum) ?? 0) + 1 : undefined);
      const max = num(s.maximum);
      let v = min ?? (max !== undefined ? Math.min(1, max) : 1);
      if (type === 'integer') v = Math.ceil(v);
      return v;
    }
    case 'boolean':
      return true;
    case 'null':
      return null;
    case 'array': {
      const prefix = Array.isArray(s.prefixItems) ? s.prefixItems : [];
      const n = Math.max(1, num(s.minItems) ?? 1, prefix.length);
      const out: unknown[] = [];
      for (let i = 0; i < n; i++) out.push(sampleFromSchema(prefix[i] ?? s.items ?? {}, word, depth + 1, r));
      return out;
    }
    case 'object':
    default: {
      const out: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(s.properties ?? {}))
        out[k] = sampleFromSchema(v, word, depth + 1, r);
      return out;
    }
  }
}

/** A word source for schema samples: lorem words seeded by the prompt. */
export function wordSource(seedText: string, seed: number): () => string {
  const rnd = mulberry32(fnv1a32(seedText, (0x9e3779b9 ^ seed) >>> 0));
  return () => WORDS[Math.floor(rnd() * WORDS.length)] as string;
}

/** Plausible logprobs for generated tokens: the chosen token likely, alternatives less so. */
export function tokenLogprobs(
  tokens: readonly string[],
  top: number,
  seed: number,
): Array<{
  token: string;
  logprob: number;
  bytes: number[];
  top_logprobs: Array<{ token: string; logprob: number; bytes: number[] }>;
}> {
  const rnd = mulberry32(seed >>> 0);
  return tokens.map((token) => {
    const logprob = -Math.round(rnd() * 0.7 * 1e4) / 1e4;
    const alts: Array<{ token: string; logprob: number; bytes: number[] }> = [];
    let lp = logprob;
    for (let i = 1; i < top; i++) {
      lp -= 0.5 + rnd() * 2;
      let alt = WORDS[Math.floor(rnd() * WORDS.length)] as string;
      if (alt === token.trim() || alts.some((a) => a.token.trim() === alt)) alt = `${alt}${i}`;
      const t = token.endsWith(' ') ? `${alt} ` : alt;
      alts.push({ token: t, logprob: Math.round(lp * 1e4) / 1e4, bytes: [...Buffer.from(t)] });
    }
    const bytes = [...Buffer.from(token)];
    return { token, logprob, bytes, top_logprobs: top > 0 ? [{ token, logprob, bytes }, ...alts] : [] };
  });
}

/** Text cut at the first stop sequence (the stop itself is not included), or undefined if none occurs. */
export function cutAtStop(text: string, stop: string | string[] | null | undefined): string | undefined {
  const stops = stop == null ? [] : Array.isArray(stop) ? stop : [stop];
  let at = -1;
  for (const st of stops) {
    if (st === '') continue;
    const i = text.indexOf(st);
    if (i >= 0 && (at < 0 || i < at)) at = i;
  }
  return at >= 0 ? text.slice(0, at) : undefined;
}

export function buildToolCall(tool: ToolDefinition, seedText: string): ToolCall {
  return {
    id: `call_${fnv1a32(seedText + tool.function.name)
      .toString(16)
      .padStart(8, '0')}`,
    type: 'function',
    function: {
      name: tool.function.name,
      arguments: JSON.stringify(sampleFromSchema(tool.function.parameters ?? { type: 'object' })),
    },
  };
}

export function embedText(text: string, dims: number, seed: number): number[] {
  const rnd = mulberry32(fnv1a32(text, (0x811c9dc5 ^ seed) >>> 0));
  const v = new Array<number>(dims);
  let norm = 0;
  for (let i = 0; i < dims; i++) {
    const x = rnd() * 2 - 1;
    v[i] = x;
    norm += x * x;
  }
  norm = Math.sqrt(norm) || 1;
  for (let i = 0; i < dims; i++) v[i] = (v[i] as number) / norm;
  return v;
}

export function floatsToBase64(v: number[]): string {
  return Buffer.from(new Float32Array(v).buffer).toString('base64');
}

/** Word-overlap relevance in [0,1]: deterministic and good enough to sort documents by. */
export function rerankScore(query: string, doc: string): number {
  const q = new Set(query.toLowerCase().split(/\W+/).filter(Boolean));
  const d = doc.toLowerCase().split(/\W+/).filter(Boolean);
  if (q.size === 0 || d.length === 0) return 0;
  let hits = 0;
  for (const w of d) if (q.has(w)) hits++;
  return Math.round((hits / Math.max(d.length, q.size)) * 1e6) / 1e6;
}
