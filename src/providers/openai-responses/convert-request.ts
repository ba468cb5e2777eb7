/**
 * Responses API request -> canonical chat request. Validates what Portico supports and answers a
 * 400 naming the parameter for what it does not (hosted tools, background mode, reasoning, ...):
 * nothing the client sent is silently dropped.
 */
import { PorticoError } from '../../errors/portico-error.js';
import type { ChatCompletionRequest, ChatMessage, ContentPart, ToolDefinition } from '../openai-types.js';
import type { FunctionTool, InputItem, ResponseToolChoice, TextFormat } from './types.js';
import { quoteValue } from '../../lib/quote-value.js';

/** A reference to an item of a stored response (`{"type":"item_reference","id":"msg_..."}`). */
export interface ItemReference {
  type: 'item_reference';
  id: string;
  /** Where it sat in `input`, for error messages. */
  param: string;
}

export interface ParsedResponsesRequest {
  model: string;
  /** This request's input items (item references still to resolve). */
  input: Array<InputItem | ItemReference>;
  instructions: string | null;
  tools: FunctionTool[];
  tool_choice: ResponseToolChoice;
  text: { format: TextFormat };
  max_output_tokens: number | null;
  temperature: number | null;
  top_p: number | null;
  metadata: Record<string, string>;
  user: string | null;
  parallel_tool_calls: boolean;
  store: boolean;
  stream: boolean;
  previous_response_id: string | null;
}

function bad(param: string, message: string): PorticoError {
  return new PorticoError('invalid_request', message, { param });
}

function unsupported(param: string, what: string): PorticoError {
  return bad(param, `${what} is not supported by Portico's Responses API (see docs/responses.md)`);
}

function typeName(v: unknown): string {
  return v === null ? 'null' : Array.isArray(v) ? 'array' : typeof v;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function optString(b: Record<string, unknown>, key: string, param = key): string | null {
  const v = b[key];
  if (v === undefined || v === null) return null;
  if (typeof v !== 'string') throw bad(param, `${param} must be a string, got ${typeName(v)}`);
  return v;
}

function optNumber(b: Record<string, unknown>, key: string, min: number, max: number): number | null {
  const v = b[key];
  if (v === undefined || v === null) return null;
  if (typeof v !== 'number' || !Number.isFinite(v))
    throw bad(key, `${key} must be a number, got ${typeName(v)}`);
  if (v < min || v > max) throw bad(key, `${key} must be between ${min} and ${max}, got ${v}`);
  return v;
}

function optBool(b: Record<string, unknown>, key: string, dflt: boolean): boolean {
  const v = b[key];
  if (v === undefined || v === null) return dflt;
  if (typeof v !== 'boolean') throw bad(key, `${key} must be a boolean, got ${typeName(v)}`);
  return v;
}

/** Parameters accepted and honoured (or, for the ones listed in NO_OP, accepted as documented no-ops). */
const KNOWN = new Set([
  'model',
  'input',
  'instructions',
  'tools',
  'tool_choice',
  'text',
  'max_output_tokens',
  'temperature',
  'top_p',
  'metadata',
  'user',
  'parallel_tool_calls',
  'store',
  'stream',
  'stream_options',
  'previous_response_id',
  'include',
  'truncation',
  'background',
  'reasoning',
  'service_tier',
  'safety_identifier',
  'prompt_cache_key',
]);

/** `include` values that ask for nothing Portico would produce (no reasoning items): accepted. */
const INCLUDE_OK = new Set(['reasoning.encrypted_content']);

const ITEM_ID = /^[A-Za-z0-9_-]{1,128}$/;

function textOfParts(parts: unknown, param: string): string {
  if (typeof parts === 'string') return parts;
  if (!Array.isArray(parts)) throw bad(param, `${param} must be a string or an array of content parts`);
  return parts
    .map((p, j) => {
      if (
        !isObject(p) ||
        typeof p.text !== 'string' ||
        !['input_text', 'output_text', 'text'].includes(String(p.type))
      )
        throw bad(`${param}[${j}]`, `${param}[${j}] must be {"type":"input_text","text":"..."}`);
      return p.text;
    })
    .join('');
}

function inputContent(
  role: string,
  content: unknown,
  param: string,
): Array<{ type: string; [k: string]: unknown }> {
  if (typeof content === 'string')
    return [{ type: role === 'assistant' ? 'output_text' : 'input_text', text: content }];
  if (!Array.isArray(content))
    throw bad(param, `${param} must be a string or an array of content parts, got ${typeName(content)}`);
  return content.map((p, j) => {
    const at = `${param}[${j}]`;
    if (!isObject(p)) throw bad(at, `${at} must be a content part object`);
    switch (p.type) {
      case 'input_text':
      case 'output_text':
        if (typeof p.text !== 'string') throw bad(`${at}.text`, `${at}.text must be a string`);
        return { type: p.type, text: p.text };
      case 'refusal':
        if (typeof p.refusal !== 'string') throw bad(`${at}.refusal`, `${at}.refusal must be a string`);
        return { type: 'refusal', refusal: p.refusal };
      case 'input_image':
        if (typeof p.image_url !== 'string')
          throw unsupported(`${at}`, 'an input_image without image_url (file_id)');
        return {
          type: 'input_image',
          image_url: p.image_url,
          ...(typeof p.detail === 'string' ? { detail: p.detail } : {}),
        };
      case 'input_file':
      case 'input_audio':
        throw unsupported(`${at}.type`, `content part type ${quoteValue(p.type)}`);
      default:
        throw bad(`${at}.type`, `${at}.type ${quoteValue(p.type)} is not a Responses API content part type`);
    }
  });
}

function parseItem(item: unknown, i: number): InputItem | ItemReference {
  const param = `input[${i}]`;
  if (!isObject(item)) throw bad(param, `${param} must be an object, got ${typeName(item)}`);
  const id = typeof item.id === 'string' && ITEM_ID.test(item.id) ? { id: item.id } : {};
  const type = item.type ?? (item.role !== undefined ? 'message' : undefined);
  switch (type) {
    case 'message': {
      const role = item.role;
      if (role !== 'user' && role !== 'system' && role !== 'developer' && role !== 'assistant')
        throw bad(
          `${param}.role`,
          `${param}.role must be user, system, developer or assistant, got ${quoteValue(role)}`,
        );
      return { type: 'message', role, content: inputContent(role, item.content, `${param}.content`), ...id };
    }
    case 'function_call': {
      for (const k of ['call_id', 'name', 'arguments'] as const)
        if (typeof item[k] !== 'string') throw bad(`${param}.${k}`, `${param}.${k} must be a string`);
      return {
        type: 'function_call',
        call_id: item.call_id as string,
        name: item.name as string,
        arguments: item.arguments as string,
        ...id,
      };
    }
    case 'function_call_output': {
      if (typeof item.call_id !== 'string')
        throw bad(`${param}.call_id`, `${param}.call_id must be a string`);
      return {
        type: 'function_call_output',
        call_id: item.call_id,
        output: textOfParts(item.output, `${param}.output`),
        ...id,
      };
    }
    case 'item_reference': {
      if (typeof item.id !== 'string' || !ITEM_ID.test(item.id))
        throw bad(`${param}.id`, `${param}.id must be the id of an item of a stored response`);
      return { type: 'item_reference', id: item.id, param: `${param}.id` };
    }
    case 'reasoning':
      throw unsupported(`${param}.type`, 'a reasoning input item (Portico produces none)');
    default:
      throw unsupported(`${param}.type`, `input item type ${quoteValue(type)}`);
  }
}

function parseTools(v: unknown, lenient: boolean): FunctionTool[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) throw bad('tools', `tools must be an array, got ${typeName(v)}`);
  const out: FunctionTool[] = [];
  v.forEach((t: unknown, i) => {
    const param = `tools[${i}]`;
    if (!isObject(t)) throw bad(param, `${param} must be an object`);
    // Native pass-through: hosted tools go to the backend as they are.
    if (t.type !== 'function' && lenient) return;
    if (t.type !== 'function')
      throw unsupported(
        `${param}.type`,
        `the hosted tool ${quoteValue(t.type)} (only function tools are: Portico runs no web_search, file_search, code_interpreter, computer_use or MCP tools)`,
      );
    if (typeof t.name !== 'string' || t.name === '')
      throw bad(`${param}.name`, `${param}.name must be a non-empty string`);
    if (t.parameters !== undefined && t.parameters !== null && !isObject(t.parameters))
      throw bad(`${param}.parameters`, `${param}.parameters must be a JSON Schema object`);
    if (t.description !== undefined && t.description !== null && typeof t.description !== 'string')
      throw bad(`${param}.description`, `${param}.description must be a string`);
    out.push({
      type: 'function',
      name: t.name,
      ...(typeof t.description === 'string' ? { description: t.description } : {}),
      parameters: isObject(t.parameters) ? t.parameters : null,
      strict: typeof t.strict === 'boolean' ? t.strict : null,
    });
  });
  return out;
}

function parseToolChoice(v: unknown, tools: FunctionTool[], lenient: boolean): ResponseToolChoice {
  if (v === undefined || v === null) return 'auto';
  if (v === 'none' || v === 'auto' || v === 'required') return v;
  if (isObject(v) && v.type === 'function') {
    if (typeof v.name !== 'string') throw bad('tool_choice.name', 'tool_choice.name must be a string');
    if (!tools.some((t) => t.name === v.name))
      throw bad('tool_choice.name', `tool_choice names ${quoteValue(v.name)}, which is not in tools`);
    return { type: 'function', name: v.name };
  }
  if (isObject(v) && lenient) return 'auto';
  if (isObject(v)) throw unsupported('tool_choice', `tool_choice of type ${quoteValue(v.type)}`);
  throw bad(
    'tool_choice',
    'tool_choice must be "none", "auto", "required" or {"type":"function","name":"..."}',
  );
}

function parseText(v: unknown, lenient: boolean): { format: TextFormat } {
  if (v === undefined || v === null) return { format: { type: 'text' } };
  if (!isObject(v)) throw bad('text', `text must be an object, got ${typeName(v)}`);
  if (v.verbosity !== undefined && v.verbosity !== null && !lenient)
    throw unsupported('text.verbosity', 'text.verbosity');
  const f = v.format;
  if (f === undefined || f === null) return { format: { type: 'text' } };
  if (!isObject(f)) throw bad('text.format', 'text.format must be an object');
  if (f.type === 'text' || f.type === 'json_object') return { format: { type: f.type } };
  if (f.type === 'json_schema') {
    if (typeof f.name !== 'string' || f.name === '')
      throw bad('text.format.name', 'text.format.name must be a non-empty string');
    if (!isObject(f.schema))
      throw bad('text.format.schema', 'text.format.schema must be a JSON Schema object');
    return {
      format: {
        type: 'json_schema',
        name: f.name,
        schema: f.schema,
        ...(typeof f.description === 'string' ? { description: f.description } : {}),
        strict: typeof f.strict === 'boolean' ? f.strict : null,
      },
    };
  }
  throw bad('text.format.type', 'text.format.type must be "text", "json_object" or "json_schema"');
}

function parseMetadata(v: unknown): Record<string, string> {
  if (v === undefined || v === null) return {};
  if (!isObject(v)) throw bad('metadata', 'metadata must be an object of strings');
  const entries = Object.entries(v);
  if (entries.length > 16) throw bad('metadata', 'metadata holds at most 16 keys');
  for (const [k, x] of entries) {
    if (k.length > 64)
      throw bad('metadata', `metadata key ${JSON.stringify(k.slice(0, 20))}… is longer than 64`);
    if (typeof x !== 'string' || x.length > 512)
      throw bad(`metadata.${k}`, `metadata.${k} must be a string of at most 512 characters`);
  }
  return v as Record<string, string>;
}

/** The item types Portico converts; native pass-through sends others to the backend untouched. */
const CONVERTED_ITEMS = new Set(['message', 'function_call', 'function_call_output', 'item_reference']);

/** What only a backend that speaks the Responses API could honour. */
function checkBridgeable(body: Record<string, unknown>): void {
  if (body.truncation !== undefined && body.truncation !== null && body.truncation !== 'disabled')
    throw unsupported('truncation', `truncation ${JSON.stringify(body.truncation)} (only "disabled")`);
  const r = body.reasoning;
  if (
    r !== undefined &&
    r !== null &&
    !(isObject(r) && Object.values(r).every((x) => x === null || x === undefined))
  )
    throw unsupported(
      'reasoning',
      'reasoning (Portico bridges to chat backends, which return no reasoning items)',
    );
  if (
    body.service_tier !== undefined &&
    body.service_tier !== null &&
    !['auto', 'default'].includes(String(body.service_tier))
  )
    throw unsupported('service_tier', `service_tier ${quoteValue(body.service_tier)}`);
  if (body.include !== undefined && body.include !== null) {
    if (!Array.isArray(body.include)) throw bad('include', 'include must be an array');
    body.include.forEach((x, i) => {
      if (typeof x !== 'string' || !INCLUDE_OK.has(x))
        throw unsupported(`include[${i}]`, `include ${quoteValue(x)}`);
    });
  }
}

/**
 * Validate a POST /v1/responses body. `native`: the body goes to a backend that speaks the
 * Responses API itself, so what Portico cannot bridge (hosted tools, reasoning, include, other
 * item types, ...) is left for the backend to accept or refuse; what Portico governs is checked.
 */
export function parseResponsesRequest(
  body: unknown,
  opts: { native?: boolean } = {},
): ParsedResponsesRequest {
  const lenient = opts.native === true;
  if (!isObject(body)) throw bad('body', `the request body must be a JSON object, got ${typeName(body)}`);
  for (const k of Object.keys(body))
    if (!KNOWN.has(k) && body[k] !== null && body[k] !== undefined && (!lenient || k === 'conversation'))
      throw unsupported(k, `the parameter ${k}`);
  if (typeof body.model !== 'string' || body.model === '')
    throw bad('model', 'model is required: a model alias');
  if (body.background === true) throw unsupported('background', 'background mode');
  if (!lenient) checkBridgeable(body);
  const previous = optString(body, 'previous_response_id');
  let input: Array<InputItem | ItemReference>;
  const raw = body.input;
  if (typeof raw === 'string')
    input = [{ type: 'message', role: 'user', content: [{ type: 'input_text', text: raw }] }];
  else if (Array.isArray(raw))
    input = raw.flatMap((it: unknown, i) =>
      lenient &&
      isObject(it) &&
      !CONVERTED_ITEMS.has(String(it.type ?? (it.role !== undefined ? 'message' : '')))
        ? []
        : [parseItem(it, i)],
    );
  else if ((raw === undefined || raw === null) && previous !== null) input = [];
  else throw bad('input', `input must be a string or an array of input items, got ${typeName(raw)}`);
  const tools = parseTools(body.tools, lenient);
  const user = optString(body, 'user') ?? optString(body, 'safety_identifier');
  return {
    model: body.model,
    input,
    instructions: optString(body, 'instructions'),
    tools,
    tool_choice: parseToolChoice(body.tool_choice, tools, lenient),
    text: parseText(body.text, lenient),
    max_output_tokens: optNumber(body, 'max_output_tokens', 1, Number.MAX_SAFE_INTEGER),
    temperature: optNumber(body, 'temperature', 0, 2),
    top_p: optNumber(body, 'top_p', 0, 1),
    metadata: parseMetadata(body.metadata),
    user,
    parallel_tool_calls: optBool(body, 'parallel_tool_calls', true),
    store: optBool(body, 'store', true),
    stream: optBool(body, 'stream', false),
    previous_response_id: previous,
  };
}

function chatContent(content: Array<{ type: string; [k: string]: unknown }>): string | ContentPart[] {
  if (content.every((p) => typeof p.text === 'string' || typeof p.refusal === 'string'))
    return content.map((p) => (typeof p.text === 'string' ? p.text : String(p.refusal))).join('');
  return content.map((p): ContentPart => {
    if (p.type === 'input_image')
      return {
        type: 'image_url',
        image_url: {
          url: String(p.image_url),
          ...(p.detail === 'low' || p.detail === 'high' || p.detail === 'auto' ? { detail: p.detail } : {}),
        },
      };
    return { type: 'text', text: typeof p.text === 'string' ? p.text : String(p.refusal ?? '') };
  });
}

/** Input items (the conversation so far and this request's) -> chat messages. */
export function itemsToMessages(items: InputItem[]): ChatMessage[] {
  const out: ChatMessage[] = [];
  for (const it of items) {
    if (it.type === 'message') {
      const role = it.role === 'developer' ? 'system' : it.role;
      const content = chatContent(it.content);
      out.push({
        role,
        content:
          role === 'assistant' && typeof content !== 'string'
            ? content.map((p) => ('text' in p ? String(p.text) : '')).join('')
            : content,
      });
    } else if (it.type === 'function_call') {
      const call = {
        id: it.call_id,
        type: 'function' as const,
        function: { name: it.name, arguments: it.arguments },
      };
      const last = out[out.length - 1];
      // Consecutive calls (and a call right after the assistant's text) are one assistant turn.
      if (last?.role === 'assistant') last.tool_calls = [...(last.tool_calls ?? []), call];
      else out.push({ role: 'assistant', content: null, tool_calls: [call] });
    } else {
      out.push({ role: 'tool', tool_call_id: it.call_id, content: it.output });
    }
  }
  return out;
}

/** The canonical chat request for a parsed Responses request and its resolved conversation. */
export function toChatRequest(req: ParsedResponsesRequest, items: InputItem[]): ChatCompletionRequest {
  const messages = itemsToMessages(items);
  if (req.instructions !== null) messages.unshift({ role: 'system', content: req.instructions });
  if (messages.length === 0) throw bad('input', 'input is empty: send at least one message');
  const out: ChatCompletionRequest = { model: req.model, messages };
  if (req.max_output_tokens !== null) out.max_tokens = req.max_output_tokens;
  if (req.temperature !== null) out.temperature = req.temperature;
  if (req.top_p !== null) out.top_p = req.top_p;
  if (req.user !== null) out.user = req.user;
  if (req.tools.length > 0) {
    out.tools = req.tools.map((t): ToolDefinition => ({
      type: 'function',
      function: {
        name: t.name,
        ...(t.description ? { description: t.description } : {}),
        parameters: t.parameters ?? { type: 'object', properties: {} },
        ...(t.strict !== null ? { strict: t.strict } : {}),
      },
    }));
    out.tool_choice =
      typeof req.tool_choice === 'string'
        ? req.tool_choice
        : { type: 'function', function: { name: req.tool_choice.name } };
    if (!req.parallel_tool_calls) out.parallel_tool_calls = false;
  } else if (req.tool_choice === 'required' || typeof req.tool_choice === 'object') {
    throw bad('tool_choice', 'tool_choice asks for a tool call but tools is empty');
  }
  const f = req.text.format;
  if (f.type === 'json_object') out.response_format = { type: 'json_object' };
  else if (f.type === 'json_schema')
    out.response_format = {
      type: 'json_schema',
      json_schema: {
        name: f.name,
        schema: f.schema,
        ...(f.description !== undefined ? { description: f.description } : {}),
        ...(f.strict !== null && f.strict !== undefined ? { strict: f.strict } : {}),
      },
    };
  if (req.stream) {
    out.stream = true;
    out.stream_options = { include_usage: true };
  }
  return out;
}
