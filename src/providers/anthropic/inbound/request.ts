/**
 * Inbound direction: an Anthropic Messages request (POST /v1/messages) -> canonical OpenAI chat.
 * The schema is built once at module load (no per-request compilation); unknown top-level fields
 * are tolerated (forward compatibility) but known ones are checked, and the first problem becomes
 * PorticoError('invalid_request') with `param` naming the path (e.g. `messages[1].content[0].source`).
 */
import { z } from 'zod';
import { PorticoError } from '../../../errors/portico-error.js';
import type {
  ChatCompletionRequest,
  ChatMessage,
  ContentPart,
  ThinkingBlock,
  ToolCall,
  ToolChoice,
  ToolDefinition,
} from '../../openai-types.js';

const text = z.looseObject({ type: z.literal('text'), text: z.string() });
const image = z.looseObject({
  type: z.literal('image'),
  source: z.discriminatedUnion('type', [
    z.looseObject({ type: z.literal('base64'), media_type: z.string().min(1), data: z.string().min(1) }),
    z.looseObject({
      type: z.literal('url'),
      url: z.string().regex(/^https?:\/\//i, 'must be an http(s) URL'),
    }),
  ]),
});
const toolUse = z.looseObject({
  type: z.literal('tool_use'),
  id: z.string().min(1),
  name: z.string().min(1),
  input: z.record(z.string(), z.unknown()),
});
const toolResult = z.looseObject({
  type: z.literal('tool_result'),
  tool_use_id: z.string().min(1),
  content: z.union([z.string(), z.array(z.discriminatedUnion('type', [text, image]))]).optional(),
  is_error: z.boolean().optional(),
});
/** Thinking blocks sent back in history travel as the assistant's `thinking_blocks` (extension). */
const thinking = z.looseObject({
  type: z.literal('thinking'),
  thinking: z.string(),
  signature: z.string().optional(),
});
const redactedThinking = z.looseObject({ type: z.literal('redacted_thinking'), data: z.string() });

const unsupportedBlock = {
  error: (iss: { code?: string }) =>
    iss.code === 'invalid_union'
      ? 'Unsupported content block type; Portico translates text, image, tool_use and tool_result.'
      : undefined,
};
const block = z.discriminatedUnion(
  'type',
  [text, image, toolUse, toolResult, thinking, redactedThinking],
  unsupportedBlock,
);

const message = z.object({
  role: z.enum(['user', 'assistant']),
  content: z.union([z.string(), z.array(block)]),
});

const tool = z.looseObject({
  name: z.string().min(1),
  description: z.string().optional(),
  input_schema: z.record(z.string(), z.unknown()),
});

const toolChoice = z.discriminatedUnion('type', [
  z.looseObject({ type: z.literal('auto'), disable_parallel_tool_use: z.boolean().optional() }),
  z.looseObject({ type: z.literal('any'), disable_parallel_tool_use: z.boolean().optional() }),
  z.looseObject({ type: z.literal('none') }),
  z.looseObject({
    type: z.literal('tool'),
    name: z.string().min(1),
    disable_parallel_tool_use: z.boolean().optional(),
  }),
]);

const requestSchema = z.looseObject({
  model: z.string().min(1),
  max_tokens: z.number().int().positive(),
  messages: z.array(message).min(1),
  system: z.union([z.string(), z.array(text)]).optional(),
  stop_sequences: z.array(z.string()).optional(),
  stream: z.boolean().optional(),
  temperature: z.number().min(0).max(1).optional(),
  top_p: z.number().min(0).max(1).optional(),
  top_k: z.number().int().nonnegative().optional(),
  tools: z.array(tool).optional(),
  tool_choice: toolChoice.optional(),
  metadata: z.looseObject({ user_id: z.string().optional().nullable() }).optional(),
  // Structured outputs: `output_config.format` (and the older `output_format`).
  output_config: z
    .looseObject({
      format: z
        .looseObject({ type: z.literal('json_schema'), schema: z.record(z.string(), z.unknown()) })
        .optional(),
    })
    .optional(),
  output_format: z
    .looseObject({ type: z.literal('json_schema'), schema: z.record(z.string(), z.unknown()) })
    .optional(),
  thinking: z
    .discriminatedUnion('type', [
      z.looseObject({ type: z.literal('enabled'), budget_tokens: z.number().int().positive() }),
      z.looseObject({ type: z.literal('disabled') }),
    ])
    .optional(),
});

export type AnthropicInboundRequest = z.infer<typeof requestSchema>;

/** `['messages', 1, 'content', 0]` -> `messages[1].content[0]`. */
export function formatParam(path: ReadonlyArray<PropertyKey>): string {
  let out = '';
  for (const p of path) {
    if (typeof p === 'number') out += `[${p}]`;
    else out += out === '' ? String(p) : `.${String(p)}`;
  }
  return out;
}

interface Problem {
  path: PropertyKey[];
  message: string;
}

/**
 * A union failure (e.g. content: string | blocks[]) is reported by zod at the union's path with
 * one issue list per branch; the useful problem is the deepest one in the branch that matched
 * the input's shape, so descend into it.
 */
function deepest(issue: z.core.$ZodIssue): Problem {
  const here: Problem = { path: [...issue.path], message: issue.message };
  if (issue.code !== 'invalid_union' || issue.errors.length === 0) return here;
  let best: Problem | undefined;
  for (const branch of issue.errors) {
    const first = branch[0];
    if (first === undefined) continue;
    const p = deepest(first);
    const wrongShape = first.code === 'invalid_type' && first.path.length === 0;
    if (wrongShape && issue.errors.length > 1) continue;
    if (best === undefined || p.path.length > best.path.length) best = p;
  }
  return best ? { path: [...here.path, ...best.path], message: best.message } : here;
}

/** Validates an Anthropic request body; throws PorticoError('invalid_request') with `param`. */
export function parseAnthropicRequest(body: unknown): AnthropicInboundRequest {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new PorticoError(
      'invalid_request',
      'The body must be a JSON object (an Anthropic Messages request).',
    );
  }
  const r = requestSchema.safeParse(body);
  if (!r.success) {
    const first = r.error.issues[0];
    const issue = first ? deepest(first) : undefined;
    const param = issue && issue.path.length > 0 ? formatParam(issue.path) : null;
    // A missing field in Anthropic's words ("Field required"); max_tokens is the one people miss.
    let message = issue?.message ?? 'invalid request';
    if (/^Invalid input: expected \w+, received undefined$/.test(message))
      message =
        param === 'max_tokens'
          ? 'Field required: the Messages API needs max_tokens, the most tokens to generate (e.g. "max_tokens": 1024)'
          : 'Field required';
    throw new PorticoError('invalid_request', `${param ? `${param}: ` : ''}${message}`, { param });
  }
  return r.data;
}

type Block = z.infer<typeof block>;

/** A prompt-caching breakpoint, kept on the canonical part/message/tool (extension). */
function cacheControlOf(b: object): { cache_control?: unknown } {
  const cc = (b as { cache_control?: unknown }).cache_control;
  return cc === undefined || cc === null ? {} : { cache_control: cc };
}

function hasCacheControl(p: object): boolean {
  return cacheControlOf(p).cache_control !== undefined;
}

function imageToPart(b: z.infer<typeof image>): ContentPart {
  const url =
    b.source.type === 'base64' ? `data:${b.source.media_type};base64,${b.source.data}` : b.source.url;
  return { type: 'image_url', image_url: { url }, ...cacheControlOf(b) };
}

function textPart(b: z.infer<typeof text>): ContentPart {
  return { type: 'text', text: b.text, ...cacheControlOf(b) };
}

/** One plain string when nothing needs the parts form (a single text part, no breakpoint). */
function partsContent(parts: ContentPart[]): string | ContentPart[] {
  const only = parts[0];
  return parts.length === 1 && only?.type === 'text' && !hasCacheControl(only)
    ? (only as { text: string }).text
    : parts;
}

function toolResultContent(b: z.infer<typeof toolResult>, param: string): string {
  if (b.content === undefined) return '';
  if (typeof b.content === 'string') return b.content;
  return b.content
    .map((c, i) => {
      if (c.type !== 'text') {
        throw new PorticoError(
          'invalid_request',
          'Images inside tool_result are not supported by OpenAI-protocol backends.',
          {
            param: `${param}.content[${i}]`,
          },
        );
      }
      return c.text;
    })
    .join('\n');
}

function convertUser(content: string | Block[], i: number, out: ChatMessage[]): void {
  if (typeof content === 'string') {
    out.push({ role: 'user', content });
    return;
  }
  const parts: ContentPart[] = [];
  content.forEach((b, j) => {
    if (b.type === 'tool_result') {
      // Tool results become `tool` messages, which must directly follow the assistant's tool_calls.
      out.push({
        role: 'tool',
        tool_call_id: b.tool_use_id,
        content: toolResultContent(b, `messages[${i}].content[${j}]`),
        ...(b.is_error === true ? { is_error: true } : {}),
        ...cacheControlOf(b),
      });
    } else if (b.type === 'text') {
      parts.push(textPart(b));
    } else if (b.type === 'image') {
      parts.push(imageToPart(b));
    } else if (b.type === 'tool_use') {
      throw new PorticoError('invalid_request', 'tool_use blocks belong in assistant messages.', {
        param: `messages[${i}].content[${j}]`,
      });
    }
    // thinking blocks in a user turn: not meaningful there, dropped
  });
  if (parts.length === 0) return;
  out.push({ role: 'user', content: partsContent(parts) });
}

function convertAssistant(content: string | Block[], i: number, out: ChatMessage[]): void {
  if (typeof content === 'string') {
    out.push({ role: 'assistant', content });
    return;
  }
  const texts: ContentPart[] = [];
  const calls: ToolCall[] = [];
  const thinkingBlocks: ThinkingBlock[] = [];
  content.forEach((b, j) => {
    if (b.type === 'text') texts.push(textPart(b));
    else if (b.type === 'thinking')
      thinkingBlocks.push({
        type: 'thinking',
        thinking: b.thinking,
        ...(b.signature !== undefined ? { signature: b.signature } : {}),
      });
    else if (b.type === 'redacted_thinking') thinkingBlocks.push({ type: 'redacted_thinking', data: b.data });
    else if (b.type === 'tool_use') {
      calls.push({
        id: b.id,
        type: 'function',
        function: { name: b.name, arguments: JSON.stringify(b.input) },
        ...cacheControlOf(b),
      });
    } else if (b.type === 'image' || b.type === 'tool_result') {
      throw new PorticoError('invalid_request', `${b.type} blocks are not allowed in assistant messages.`, {
        param: `messages[${i}].content[${j}]`,
      });
    }
  });
  const breakpoints = texts.some(hasCacheControl);
  const m: ChatMessage = {
    role: 'assistant',
    content:
      texts.length === 0
        ? null
        : breakpoints
          ? texts
          : texts.map((p) => (p as { text: string }).text).join(''),
  };
  if (calls.length > 0) m.tool_calls = calls;
  if (thinkingBlocks.length > 0) m['thinking_blocks'] = thinkingBlocks;
  if (m.content === null && calls.length === 0 && thinkingBlocks.length === 0) return;
  out.push(m);
}

function convertToolChoice(tc: z.infer<typeof toolChoice>): ToolChoice {
  switch (tc.type) {
    case 'auto':
      return 'auto';
    case 'any':
      return 'required';
    case 'none':
      return 'none';
    case 'tool':
      return { type: 'function', function: { name: tc.name } };
  }
}

/** Anthropic Messages request -> canonical OpenAI chat request. Throws invalid_request on bad input. */
export function anthropicRequestToOpenAI(body: unknown): ChatCompletionRequest {
  const req = parseAnthropicRequest(body);
  const messages: ChatMessage[] = [];
  if (req.system !== undefined) {
    const sys =
      typeof req.system === 'string'
        ? req.system
        : req.system.some((b) => b.cache_control !== undefined && b.cache_control !== null)
          ? req.system.map(textPart)
          : req.system.map((b) => b.text).join('\n');
    if (sys !== '' && !(Array.isArray(sys) && sys.length === 0))
      messages.push({ role: 'system', content: sys });
  }
  req.messages.forEach((m, i) => {
    if (m.role === 'user') convertUser(m.content, i, messages);
    else convertAssistant(m.content, i, messages);
  });
  const out: ChatCompletionRequest = { model: req.model, messages, max_tokens: req.max_tokens };
  if (req.temperature !== undefined) out.temperature = req.temperature;
  if (req.top_p !== undefined) out.top_p = req.top_p;
  if (req.top_k !== undefined) out['top_k'] = req.top_k;
  if (req.stop_sequences !== undefined && req.stop_sequences.length > 0) out.stop = req.stop_sequences;
  if (req.tools !== undefined && req.tools.length > 0) {
    out.tools = req.tools.map((t): ToolDefinition => ({
      type: 'function',
      function: {
        name: t.name,
        ...(t.description !== undefined ? { description: t.description } : {}),
        parameters: t.input_schema,
      },
      ...cacheControlOf(t),
    }));
  }
  if (req.tool_choice !== undefined) {
    out.tool_choice = convertToolChoice(req.tool_choice);
    if (
      'disable_parallel_tool_use' in req.tool_choice &&
      req.tool_choice.disable_parallel_tool_use === true
    ) {
      out['parallel_tool_calls'] = false;
    }
  }
  if (typeof req.metadata?.user_id === 'string' && req.metadata.user_id !== '')
    out.user = req.metadata.user_id;
  if (req.thinking !== undefined) out['thinking'] = req.thinking;
  // A JSON-schema output becomes response_format: every backend kind honours that (Anthropic ones
  // through a forced tool, which any Claude model accepts).
  const format = req.output_config?.format ?? req.output_format;
  if (format !== undefined)
    out['response_format'] = { type: 'json_schema', json_schema: { name: 'output', schema: format.schema } };
  if (req.stream === true) {
    out.stream = true;
    // Anthropic streams always end with usage; ask the backend for it.
    out.stream_options = { include_usage: true };
  }
  return out;
}
