/**
 * OpenAI chat request -> Anthropic Messages request (outbound direction).
 * https://docs.anthropic.com/en/api/messages
 */
import { PorticoError } from '../../errors/portico-error.js';
import type { ChatCompletionRequest, ChatMessage, ContentPart, ToolChoice } from '../openai-types.js';
import type {
  AnthropicContentBlockParam,
  AnthropicImageBlock,
  AnthropicMessageParam,
  AnthropicMessagesRequest,
  AnthropicTextBlock,
  AnthropicTool,
  AnthropicToolChoice,
  AnthropicToolResultBlock,
} from './types.js';
import { responseToolChoice, responseToolFor } from './structured-output.js';

export interface ConvertRequestOptions {
  /** Upstream model name; when unset the request's model is sent. */
  model?: string;
  /** Anthropic requires max_tokens; used when the client gave none. */
  defaultMaxTokens: number;
}

const DATA_URL = /^data:([^;,]+);base64,(.*)$/s;

/** Turns an OpenAI image_url into an Anthropic image block (data: URL -> base64, http(s) -> url). */
export function convertImageUrl(url: string, param: string): AnthropicImageBlock {
  const m = DATA_URL.exec(url);
  if (m) return { type: 'image', source: { type: 'base64', media_type: m[1] ?? '', data: m[2] ?? '' } };
  if (/^https?:\/\//i.test(url)) return { type: 'image', source: { type: 'url', url } };
  throw new PorticoError('invalid_request', 'image_url.url must be a base64 data: URL or an http(s) URL.', {
    param,
  });
}

/** `cache_control` (prompt-caching breakpoint) carried over from a part, tool or message, when set. */
function cacheControlOf(o: object): { cache_control?: unknown } {
  const cc = (o as { cache_control?: unknown }).cache_control;
  return cc === undefined || cc === null ? {} : { cache_control: cc };
}

function convertParts(
  content: ChatMessage['content'],
  param: string,
): Array<AnthropicTextBlock | AnthropicImageBlock> {
  if (content === null || content === undefined) return [];
  if (typeof content === 'string') return content === '' ? [] : [{ type: 'text', text: content }];
  const out: Array<AnthropicTextBlock | AnthropicImageBlock> = [];
  content.forEach((part: ContentPart, i) => {
    const p = `${param}[${i}]`;
    if (part.type === 'text' && typeof part['text'] === 'string') {
      if (part['text'] !== '') out.push({ type: 'text', text: part['text'], ...cacheControlOf(part) });
    } else if (part.type === 'image_url') {
      const iu = part['image_url'];
      const url = typeof iu === 'object' && iu !== null ? (iu as { url?: unknown }).url : undefined;
      if (typeof url !== 'string')
        throw new PorticoError('invalid_request', 'image_url.url must be a string.', { param: p });
      out.push({ ...convertImageUrl(url, `${p}.image_url.url`), ...cacheControlOf(part) });
    } else {
      throw new PorticoError(
        'invalid_request',
        `Content part type '${part.type}' is not supported by this model's backend.`,
        {
          param: p,
        },
      );
    }
  });
  return out;
}

function systemBlocks(content: ChatMessage['content'], param: string): AnthropicTextBlock[] {
  return convertParts(content, param).map((b) => {
    if (b.type !== 'text')
      throw new PorticoError('invalid_request', 'System messages may only contain text.', { param });
    return b;
  });
}

function parseArguments(args: string, param: string): Record<string, unknown> {
  if (args.trim() === '') return {};
  let v: unknown;
  try {
    v = JSON.parse(args);
  } catch {
    throw new PorticoError(
      'invalid_request',
      'tool_calls[].function.arguments must be a JSON object string.',
      { param },
    );
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) {
    throw new PorticoError('invalid_request', 'tool_calls[].function.arguments must encode a JSON object.', {
      param,
    });
  }
  return v as Record<string, unknown>;
}

/** Appends a turn, merging into the previous one when the role repeats (Anthropic wants alternation). */
function pushTurn(
  turns: AnthropicMessageParam[],
  role: 'user' | 'assistant',
  blocks: AnthropicContentBlockParam[],
): void {
  if (blocks.length === 0) return;
  const last = turns[turns.length - 1];
  if (last && last.role === role && Array.isArray(last.content)) {
    // Tool results must come first in a user turn.
    if (role === 'user' && blocks.every((b) => b.type === 'tool_result')) {
      const firstNonResult = last.content.findIndex((b) => b.type !== 'tool_result');
      if (firstNonResult >= 0) {
        last.content.splice(firstNonResult, 0, ...blocks);
        return;
      }
    }
    last.content.push(...blocks);
    return;
  }
  turns.push({ role, content: blocks });
}

function convertToolChoice(tc: ToolChoice): AnthropicToolChoice {
  if (tc === 'auto') return { type: 'auto' };
  if (tc === 'none') return { type: 'none' };
  if (tc === 'required') return { type: 'any' };
  if (
    typeof tc === 'object' &&
    tc !== null &&
    tc.type === 'function' &&
    typeof tc.function?.name === 'string'
  ) {
    return { type: 'tool', name: tc.function.name };
  }
  throw new PorticoError(
    'invalid_request',
    "tool_choice must be 'auto', 'none', 'required' or {type:'function', function:{name}}.",
    {
      param: 'tool_choice',
    },
  );
}

export function convertMessages(messages: ChatMessage[]): {
  system: string | AnthropicTextBlock[] | undefined;
  messages: AnthropicMessageParam[];
} {
  const system: AnthropicTextBlock[][] = [];
  const turns: AnthropicMessageParam[] = [];
  messages.forEach((m, i) => {
    const param = `messages[${i}].content`;
    switch (m.role) {
      case 'system':
      case 'developer': {
        const blocks = systemBlocks(m.content, param);
        if (blocks.length > 0) system.push(blocks);
        break;
      }
      case 'user':
        pushTurn(turns, 'user', convertParts(m.content, param));
        break;
      case 'assistant': {
        // Thinking blocks (with their signatures) go first, as Anthropic returned them.
        const blocks: AnthropicContentBlockParam[] = [
          ...thinkingBlocksOf(m['thinking_blocks']),
          ...convertParts(m.content, param),
        ];
        (m.tool_calls ?? []).forEach((tc, j) => {
          blocks.push({
            type: 'tool_use',
            id: tc.id,
            name: tc.function.name,
            input: parseArguments(
              tc.function.arguments,
              `messages[${i}].tool_calls[${j}].function.arguments`,
            ),
            ...cacheControlOf(tc),
          });
        });
        pushTurn(turns, 'assistant', blocks);
        break;
      }
      case 'tool': {
        if (typeof m.tool_call_id !== 'string' || m.tool_call_id === '') {
          throw new PorticoError('invalid_request', 'Tool messages need tool_call_id.', {
            param: `messages[${i}].tool_call_id`,
          });
        }
        const parts = convertParts(m.content, param);
        const block: AnthropicToolResultBlock = {
          type: 'tool_result',
          tool_use_id: m.tool_call_id,
          ...cacheControlOf(m),
        };
        // An empty result is sent without content (empty text blocks are refused upstream).
        if (parts.length > 0) block.content = parts;
        if (m['is_error'] === true) block.is_error = true;
        pushTurn(turns, 'user', [block]);
        break;
      }
      default:
        throw new PorticoError('invalid_request', `Unknown message role '${String(m.role)}'.`, {
          param: `messages[${i}].role`,
        });
    }
  });
  // A plain string unless a block carries a cache breakpoint (which needs the block form).
  const flat = system.flat();
  const out =
    flat.length === 0
      ? undefined
      : flat.some((b) => b.cache_control !== undefined)
        ? flat
        : system.map((blocks) => blocks.map((b) => b.text).join('\n')).join('\n\n');
  return { system: out, messages: turns };
}

/** `thinking_blocks` of an assistant message (extension), validated, as Anthropic blocks. */
function thinkingBlocksOf(v: unknown): AnthropicContentBlockParam[] {
  if (!Array.isArray(v)) return [];
  const out: AnthropicContentBlockParam[] = [];
  for (const b of v as unknown[]) {
    if (typeof b !== 'object' || b === null) continue;
    const o = b as { type?: unknown; thinking?: unknown; signature?: unknown; data?: unknown };
    if (o.type === 'thinking' && typeof o.thinking === 'string')
      out.push({
        type: 'thinking',
        thinking: o.thinking,
        ...(typeof o.signature === 'string' ? { signature: o.signature } : {}),
      });
    else if (o.type === 'redacted_thinking' && typeof o.data === 'string')
      out.push({ type: 'redacted_thinking', data: o.data });
  }
  return out;
}

/** Anthropic's temperature range is 0..1; OpenAI's is 0..2. Values above 1 are clamped, not scaled. */
export function clampTemperature(t: number): number {
  return Math.min(1, Math.max(0, t));
}

export function toAnthropicRequest(
  req: ChatCompletionRequest,
  opts: ConvertRequestOptions,
): AnthropicMessagesRequest {
  if (typeof req.n === 'number' && req.n > 1) {
    throw new PorticoError('invalid_request', "n > 1 is not supported by this model's backend (Anthropic).", {
      param: 'n',
    });
  }
  const { system, messages } = convertMessages(req.messages);
  if (messages.length === 0) {
    throw new PorticoError('invalid_request', 'At least one user or assistant message is required.', {
      param: 'messages',
    });
  }
  const maxTokens = req.max_completion_tokens ?? req.max_tokens ?? opts.defaultMaxTokens;
  const out: AnthropicMessagesRequest = { model: opts.model ?? req.model, max_tokens: maxTokens, messages };
  if (system !== undefined) out.system = system;
  if (typeof req.temperature === 'number') out.temperature = clampTemperature(req.temperature);
  if (typeof req.top_p === 'number') out.top_p = req.top_p;
  if (typeof req['top_k'] === 'number') out.top_k = req['top_k'];
  if (req.stop !== undefined && req.stop !== null) {
    const stops = (Array.isArray(req.stop) ? req.stop : [req.stop]).filter((s) => s !== '');
    if (stops.length > 0) out.stop_sequences = stops;
  }
  if (req.tools && req.tools.length > 0) {
    out.tools = req.tools.map((t): AnthropicTool => ({
      name: t.function.name,
      ...(t.function.description !== undefined ? { description: t.function.description } : {}),
      input_schema: t.function.parameters ?? { type: 'object', properties: {} },
      ...cacheControlOf(t),
    }));
  }
  if (req.tool_choice !== undefined && out.tools !== undefined) {
    const choice = convertToolChoice(req.tool_choice);
    if (req['parallel_tool_calls'] === false && choice.type !== 'none') {
      (choice as { disable_parallel_tool_use?: boolean }).disable_parallel_tool_use = true;
    }
    out.tool_choice = choice;
  } else if (req['parallel_tool_calls'] === false && out.tools !== undefined) {
    out.tool_choice = { type: 'auto', disable_parallel_tool_use: true };
  }
  if (typeof req.user === 'string' && req.user !== '') out.metadata = { user_id: req.user };
  const thinking = req['thinking'];
  if (thinking !== undefined && thinking !== null) {
    if (typeof thinking !== 'object' || Array.isArray(thinking))
      throw new PorticoError(
        'invalid_request',
        'thinking must be an object like {"type":"enabled","budget_tokens":2048}.',
        {
          param: 'thinking',
        },
      );
    out.thinking = thinking;
  }
  const rt = responseToolFor(req);
  if (rt) {
    // Claude cannot be forced to use a tool while thinking; say so rather than answer in prose.
    if ((thinking as { type?: unknown } | undefined)?.type === 'enabled')
      throw new PorticoError(
        'invalid_request',
        'response_format cannot be combined with thinking on this model (Anthropic backends need a forced tool call for structured output, which thinking does not allow).',
        { param: 'response_format' },
      );
    const hasClientTools = out.tools !== undefined && out.tools.length > 0;
    out.tool_choice = responseToolChoice(rt, out.tool_choice, hasClientTools);
    out.tools = [...(out.tools ?? []), rt.tool];
  }
  if (req.stream === true) out.stream = true;
  return out;
}
