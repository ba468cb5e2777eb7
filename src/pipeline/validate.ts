/**
 * Request validation at the edge: every problem becomes a 400 `invalid_request` naming the field
 * (`param`) and saying what is expected. Hand-written checks: they run on every request, must be
 * cheap, and must produce messages a person can act on.
 */
import { PorticoError } from '../errors/portico-error.js';
import type {
  ChatCompletionRequest,
  ChatMessage,
  CompletionRequest,
  EmbeddingRequest,
  RerankRequest,
} from '../providers/openai-types.js';
import { adoptLegacyFunctions } from './legacy-functions.js';
import { quoteValue } from '../lib/quote-value.js';

const ROLES = new Set(['system', 'developer', 'user', 'assistant', 'tool', 'function']);

function bad(param: string, message: string): PorticoError {
  return new PorticoError('invalid_request', message, { param });
}

function typeName(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  return typeof v;
}

export function requireObject(body: unknown): Record<string, unknown> {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) {
    throw bad('body', `the request body must be a JSON object, got ${typeName(body)}`);
  }
  return body as Record<string, unknown>;
}

/**
 * Null means "not set". The OpenAI spec marks most optional request fields nullable (`max_tokens`,
 * `stop`, `temperature`, `stream_options`, ...) and SDKs and frameworks send unset fields as null,
 * `user` and `tools` included, so every optional top-level field (and every optional message field
 * but `content`) that is null is removed before validation: backends then see "unset", never a null
 * some of them reject. `required` names the fields for which null stays an error.
 */
export function dropNullFields(b: Record<string, unknown>, required: readonly string[]): void {
  for (const k of Object.keys(b)) if (b[k] === null && !required.includes(k)) delete b[k];
}

const MESSAGE_KEEP_NULL = ['role', 'content'] as const;

/**
 * A short, safe rendering of a bad value for an error message: a name-like string is quoted,
 * other text is not (the message is kept in the request log: no prompt text there), nor is a huge
 * or deeply nested value.
 */
function preview(v: unknown): string {
  if (typeof v === 'string') return quoteValue(v);
  if (typeof v === 'number' || typeof v === 'boolean' || v === null) return String(v);
  return typeName(v);
}

function optInt(b: Record<string, unknown>, key: string, min: number, max = Number.MAX_SAFE_INTEGER): void {
  const v = b[key];
  if (v === undefined || v === null) return;
  if (typeof v !== 'number' || !Number.isInteger(v))
    throw bad(key, `${key} must be an integer, got ${typeName(v)} ${preview(v)}`);
  if (v < min || v > max) throw bad(key, `${key} must be between ${min} and ${max}, got ${v}`);
}

function optNumber(b: Record<string, unknown>, key: string, min: number, max: number): void {
  const v = b[key];
  if (v === undefined || v === null) return;
  if (typeof v !== 'number' || !Number.isFinite(v))
    throw bad(key, `${key} must be a number, got ${typeName(v)}`);
  if (v < min || v > max) throw bad(key, `${key} must be between ${min} and ${max}, got ${v}`);
}

function optBool(b: Record<string, unknown>, key: string): void {
  const v = b[key];
  if (v !== undefined && v !== null && typeof v !== 'boolean')
    throw bad(key, `${key} must be true or false, got ${typeName(v)}`);
}

function requireModel(b: Record<string, unknown>): void {
  const m = b.model;
  if (m === undefined) throw bad('model', 'model is required (GET /v1/models lists the models you may use)');
  if (typeof m !== 'string' || m.length === 0 || m.length > 256)
    throw bad('model', 'model must be a non-empty string');
}

function checkStop(b: Record<string, unknown>): void {
  const s = b.stop;
  if (s === undefined || s === null || typeof s === 'string') return;
  if (!Array.isArray(s) || s.length > 16 || s.some((x) => typeof x !== 'string')) {
    throw bad('stop', 'stop must be a string or an array of up to 16 strings');
  }
}

function checkStreamOptions(b: Record<string, unknown>): void {
  optBool(b, 'stream');
  const so = b.stream_options;
  if (so === undefined || so === null) return;
  if (typeof so !== 'object' || Array.isArray(so))
    throw bad('stream_options', 'stream_options must be an object');
  optBool(so as Record<string, unknown>, 'include_usage');
}

function checkContent(m: Record<string, unknown>, i: number): void {
  const c = m.content;
  const p = `messages[${i}].content`;
  if (typeof c === 'string') return;
  if (c === null || c === undefined) {
    if (m.role === 'assistant' && (Array.isArray(m.tool_calls) || m.function_call !== undefined)) return;
    throw bad(p, `${p} is required for role "${String(m.role)}"`);
  }
  if (!Array.isArray(c))
    throw bad(p, `${p} must be a string or an array of content parts, got ${typeName(c)}`);
  c.forEach((part: unknown, j) => {
    if (part === null || typeof part !== 'object' || typeof (part as { type?: unknown }).type !== 'string') {
      throw bad(
        `${p}[${j}]`,
        `${p}[${j}] must be an object with a "type" (e.g. {"type":"text","text":"..."})`,
      );
    }
    const pt = part as { type: string; text?: unknown; image_url?: unknown };
    if (pt.type === 'text' && typeof pt.text !== 'string')
      throw bad(`${p}[${j}].text`, `${p}[${j}].text must be a string`);
    if (pt.type === 'image_url') {
      const iu = pt.image_url as { url?: unknown } | undefined;
      if (!iu || typeof iu.url !== 'string')
        throw bad(`${p}[${j}].image_url.url`, `${p}[${j}].image_url.url must be a string`);
    }
  });
}

function checkMessages(b: Record<string, unknown>): void {
  const msgs = b.messages;
  if (msgs === undefined)
    throw bad('messages', 'messages is required: an array like [{"role":"user","content":"Hello"}]');
  if (!Array.isArray(msgs)) throw bad('messages', `messages must be an array, got ${typeName(msgs)}`);
  if (msgs.length === 0) throw bad('messages', 'messages must contain at least one message');
  msgs.forEach((m: unknown, i) => {
    if (m === null || typeof m !== 'object' || Array.isArray(m))
      throw bad(`messages[${i}]`, `messages[${i}] must be an object`);
    const msg = m as Record<string, unknown>;
    dropNullFields(msg, MESSAGE_KEEP_NULL);
    if (typeof msg.role !== 'string' || !ROLES.has(msg.role)) {
      throw bad(
        `messages[${i}].role`,
        `messages[${i}].role must be one of system, developer, user, assistant, tool; got ${preview(msg.role)}`,
      );
    }
    checkContent(msg, i);
    if (msg.role === 'tool' && typeof msg.tool_call_id !== 'string') {
      throw bad(`messages[${i}].tool_call_id`, `messages[${i}].tool_call_id is required for role "tool"`);
    }
    if (msg.tool_calls !== undefined && !Array.isArray(msg.tool_calls))
      throw bad(`messages[${i}].tool_calls`, 'tool_calls must be an array');
  });
}

function checkTools(b: Record<string, unknown>): void {
  const tools = b.tools;
  if (tools !== undefined && tools !== null) {
    if (!Array.isArray(tools))
      throw bad('tools', 'tools must be an array of {"type":"function","function":{...}}');
    tools.forEach((t: unknown, i) => {
      const fn = (t as { function?: { name?: unknown } } | null)?.function;
      if (
        !t ||
        typeof t !== 'object' ||
        (t as { type?: unknown }).type !== 'function' ||
        !fn ||
        typeof fn.name !== 'string' ||
        fn.name === ''
      ) {
        throw bad(
          `tools[${i}]`,
          `tools[${i}] must be {"type":"function","function":{"name":"...","parameters":{...}}}`,
        );
      }
    });
  }
  const tc = b.tool_choice;
  if (tc === undefined || tc === null) return;
  if (typeof tc === 'string') {
    if (!['none', 'auto', 'required'].includes(tc))
      throw bad(
        'tool_choice',
        'tool_choice must be "none", "auto", "required" or {"type":"function","function":{"name":"..."}}',
      );
    return;
  }
  const name = (tc as { function?: { name?: unknown } }).function?.name;
  if (typeof tc !== 'object' || typeof name !== 'string')
    throw bad('tool_choice', 'tool_choice object must be {"type":"function","function":{"name":"..."}}');
}

const RESPONSE_FORMATS = new Set(['text', 'json_object', 'json_schema']);

function checkResponseFormat(b: Record<string, unknown>): void {
  const rf = b.response_format;
  if (rf === undefined) return;
  const type = (rf as { type?: unknown } | null)?.type;
  if (typeof rf !== 'object' || Array.isArray(rf) || typeof type !== 'string' || !RESPONSE_FORMATS.has(type))
    throw bad(
      'response_format',
      'response_format must be {"type":"text"}, {"type":"json_object"} or {"type":"json_schema","json_schema":{"name":"...","schema":{...}}}',
    );
  if (type !== 'json_schema') return;
  const js = (rf as { json_schema?: unknown }).json_schema as
    { name?: unknown; schema?: unknown } | undefined;
  if (!js || typeof js !== 'object' || typeof js.name !== 'string' || js.name === '')
    throw bad(
      'response_format.json_schema.name',
      'response_format.json_schema.name must be a non-empty string',
    );
  if (
    js.schema !== undefined &&
    (typeof js.schema !== 'object' || js.schema === null || Array.isArray(js.schema))
  )
    throw bad(
      'response_format.json_schema.schema',
      'response_format.json_schema.schema must be a JSON Schema object',
    );
}

export function validateChatRequest(body: unknown): ChatCompletionRequest {
  const b = requireObject(body);
  dropNullFields(b, ['model', 'messages']);
  adoptLegacyFunctions(b);
  requireModel(b);
  checkMessages(b);
  checkStreamOptions(b);
  optInt(b, 'max_tokens', 1);
  optInt(b, 'max_completion_tokens', 1);
  optInt(b, 'n', 1, 128);
  optInt(b, 'seed', Number.MIN_SAFE_INTEGER);
  optNumber(b, 'temperature', 0, 2);
  optNumber(b, 'top_p', 0, 1);
  optNumber(b, 'presence_penalty', -2, 2);
  optNumber(b, 'frequency_penalty', -2, 2);
  checkStop(b);
  checkTools(b);
  checkResponseFormat(b);
  if (b.user !== undefined && typeof b.user !== 'string') throw bad('user', 'user must be a string');
  return b as unknown as ChatCompletionRequest;
}

/** The largest token id taken (int32: every tokenizer's vocabulary fits). */
const MAX_TOKEN_ID = 2 ** 31 - 1;

function isTokenId(x: unknown): boolean {
  return typeof x === 'number' && Number.isInteger(x) && x >= 0 && x <= MAX_TOKEN_ID;
}

/**
 * A completions prompt given as a list: texts, token ids (lm-evaluation-harness sends ids by
 * default), or lists of token ids — one kind, non-empty; as many prompts as embeddings inputs.
 */
function isPromptList(p: unknown, maxPrompts: number): boolean {
  if (!Array.isArray(p) || p.length === 0) return false;
  const first: unknown = p[0];
  if (typeof first === 'string') return p.length <= maxPrompts && p.every((x) => typeof x === 'string');
  if (typeof first === 'number') return p.every(isTokenId);
  return (
    p.length <= maxPrompts && p.every((x: unknown) => Array.isArray(x) && x.length > 0 && x.every(isTokenId))
  );
}

export function validateCompletionRequest(body: unknown, maxPrompts = 2048): CompletionRequest {
  const b = requireObject(body);
  dropNullFields(b, ['model', 'prompt']);
  requireModel(b);
  const p = b.prompt;
  if (p === undefined)
    throw bad('prompt', 'prompt is required (a string, an array of strings, or token ids)');
  if (typeof p !== 'string' && !isPromptList(p, maxPrompts)) {
    throw bad(
      'prompt',
      `prompt must be a string, an array of 1-${maxPrompts} strings, an array of token ids (integers 0-${MAX_TOKEN_ID}), or an array of 1-${maxPrompts} non-empty arrays of token ids`,
    );
  }
  checkStreamOptions(b);
  optInt(b, 'max_tokens', 1);
  optNumber(b, 'temperature', 0, 2);
  optInt(b, 'seed', Number.MIN_SAFE_INTEGER);
  checkStop(b);
  return b as unknown as CompletionRequest;
}

export function validateEmbeddingRequest(body: unknown, maxInputs = 2048): EmbeddingRequest {
  const b = requireObject(body);
  dropNullFields(b, ['model', 'input']);
  requireModel(b);
  const input = b.input;
  if (input === undefined)
    throw bad('input', 'input is required (a string, an array of strings, or token arrays)');
  const ok =
    (typeof input === 'string' && input.length > 0) ||
    (Array.isArray(input) &&
      input.length > 0 &&
      input.length <= maxInputs &&
      (input.every((x) => typeof x === 'string' && x.length > 0) ||
        input.every((x) => Number.isInteger(x)) ||
        input.every(
          (x) => Array.isArray(x) && x.length > 0 && x.every((y: unknown) => Number.isInteger(y)),
        )));
  if (!ok)
    throw bad(
      'input',
      `input must be a non-empty string, or an array of 1-${maxInputs} non-empty strings or token arrays`,
    );
  const ef = b.encoding_format;
  if (ef !== undefined && ef !== 'float' && ef !== 'base64')
    throw bad('encoding_format', 'encoding_format must be "float" or "base64"');
  optInt(b, 'dimensions', 1, 65536);
  return b as unknown as EmbeddingRequest;
}

export function validateRerankRequest(body: unknown, maxDocuments = 1000): RerankRequest {
  const b = requireObject(body);
  dropNullFields(b, ['model', 'query', 'documents']);
  requireModel(b);
  if (typeof b.query !== 'string' || b.query === '') throw bad('query', 'query must be a non-empty string');
  const d = b.documents;
  if (!Array.isArray(d) || d.length === 0 || d.length > maxDocuments)
    throw bad('documents', `documents must be an array of 1-${maxDocuments} strings`);
  // Accept TEI/Cohere-style {text} objects too; normalise to strings.
  const docs = d.map((x: unknown, i) => {
    if (typeof x === 'string') return x;
    if (x && typeof x === 'object' && typeof (x as { text?: unknown }).text === 'string')
      return (x as { text: string }).text;
    throw bad(`documents[${i}]`, `documents[${i}] must be a string or {"text": "..."}`);
  });
  optInt(b, 'top_n', 1);
  optBool(b, 'return_documents');
  return { ...(b as unknown as RerankRequest), documents: docs };
}

export interface AskRequest {
  question: string;
  max_tokens?: number;
  model?: string;
  stream?: boolean;
}

export function validateAskRequest(body: unknown): AskRequest {
  const b = requireObject(body);
  const q = b.question;
  if (q !== undefined && typeof q !== 'string') {
    const got = typeof q === 'object' ? typeName(q) : `${typeName(q)} ${preview(q)}`;
    throw bad('question', `question must be a string, got ${got}: {"question": "...", "max_tokens": 512}`);
  }
  if (typeof b.question !== 'string' || b.question.trim() === '')
    throw bad('question', 'question is required: {"question": "...", "max_tokens": 512}');
  optInt(b, 'max_tokens', 1);
  if (b.model !== undefined && typeof b.model !== 'string') throw bad('model', 'model must be a string');
  optBool(b, 'stream');
  return b as unknown as AskRequest;
}

export type { ChatMessage };
