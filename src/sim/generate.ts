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

/** Which tool (if any) the simulator should call for this request. */
export function chooseTool(
  tools: ToolDefinition[] | undefined,
  choice: ToolChoice | undefined,
  lastUser: string,
): ToolDefinition | undefined {
  if (!tools || tools.length === 0 || choice === 'none') return undefined;
  if (typeof choice === 'object' && choice !== null)
    return tools.find((t) => t.function.name === choice.function.name);
  if (choice === 'required') return tools[0];
  const lower = lastUser.toLowerCase();
  return tools.find((t) => lower.includes(t.function.name.toLowerCase()));
}

function sampleFromSchema(schema: unknown, depth = 0): unknown {
  if (depth > 4 || schema === null || typeof schema !== 'object') return null;
  const s = schema as {
    type?: unknown;
    properties?: Record<string, unknown>;
    enum?: unknown[];
    items?: unknown;
  };
  if (Array.isArray(s.enum) && s.enum.length > 0) return s.enum[0];
  switch (s.type) {
    case 'string':
      return 'sim';
    case 'number':
    case 'integer':
      return 1;
    case 'boolean':
      return true;
    case 'array':
      return [sampleFromSchema(s.items, depth + 1)];
    case 'object':
    default: {
      const out: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(s.properties ?? {})) out[k] = sampleFromSchema(v, depth + 1);
      return out;
    }
  }
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
