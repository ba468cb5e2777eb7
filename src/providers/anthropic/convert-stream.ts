/**
 * Anthropic stream events -> OpenAI chat.completion.chunk objects (outbound direction).
 * Event order per https://docs.anthropic.com/en/api/messages-streaming: message_start, then for
 * each content block content_block_start / content_block_delta* / content_block_stop, then
 * message_delta (stop_reason, cumulative usage), message_stop; ping may appear anywhere; an
 * `error` event may arrive instead of the rest.
 */
import { PorticoError } from '../../errors/portico-error.js';
import type { ChatCompletionChunk, FinishReason, ToolCallDelta, Usage } from '../openai-types.js';
import { mapUsage, mapStopReason } from './convert-response.js';
import { mapAnthropicStreamError } from './map-error.js';
import type { AnthropicMessageDeltaUsage, AnthropicStreamEvent, AnthropicUsage } from './types.js';
import type { ResponseTool } from './structured-output.js';

export interface ConvertStreamOptions {
  /** Model name to report; defaults to the upstream's. */
  model?: string;
  /** Emit a final `choices: []` chunk carrying usage (stream_options.include_usage). */
  includeUsage: boolean;
  created?: number;
  backendId?: string;
  /** The tool that carries a structured output: its input fragments stream as content. */
  responseTool?: ResponseTool | undefined;
  /**
   * Called with the cumulative usage each time the upstream reports it (message_start, then every
   * message_delta), so a stream cut short before message_stop can still be billed by Anthropic's
   * own counts (the usage chunk comes only at message_stop).
   */
  onUsage?: (usage: AnthropicUsage) => void;
}

export async function* anthropicEventsToChunks(
  events: AsyncIterable<AnthropicStreamEvent>,
  opts: ConvertStreamOptions,
): AsyncGenerator<ChatCompletionChunk> {
  let id = 'msg_unknown';
  let model = opts.model ?? '';
  const created = opts.created ?? Math.floor(Date.now() / 1000);
  let usage: AnthropicUsage = { input_tokens: 0, output_tokens: 0 };
  let finish: FinishReason = null;
  let started = false;
  /** Anthropic content-block index -> OpenAI tool_calls index. */
  const toolIndex = new Map<number, number>();
  let nextTool = 0;
  /** Content-block indexes of the structured-output tool (streamed as content). */
  const responseBlocks = new Set<number>();
  let clientToolCalls = false;
  const rt = opts.responseTool;
  /** A wrapped (non-object) schema streams as `{"value":...}`: strip the wrapper as it passes. */
  let unwrap: { head: string; body: string } | undefined;

  const chunk = (
    delta: ChatCompletionChunk['choices'][number]['delta'],
    finishReason: FinishReason = null,
  ): ChatCompletionChunk => {
    const c: ChatCompletionChunk = {
      id,
      object: 'chat.completion.chunk',
      created,
      model,
      choices: [{ index: 0, delta, finish_reason: finishReason, logprobs: null }],
    };
    if (opts.includeUsage) c.usage = null;
    return c;
  };

  for await (const ev of events) {
    switch (ev.type) {
      case 'ping':
        break;
      case 'error':
        throw mapAnthropicStreamError(ev, opts.backendId);
      case 'message_start': {
        started = true;
        id = ev.message.id;
        if (opts.model === undefined) model = ev.message.model;
        usage = { ...ev.message.usage };
        opts.onUsage?.(usage);
        yield chunk({ role: 'assistant', content: '' });
        break;
      }
      case 'content_block_start': {
        const b = ev.content_block;
        if (b.type === 'tool_use' && rt !== undefined && b['name'] === rt.name) {
          responseBlocks.add(ev.index);
          if (rt.wrapped) unwrap = { head: '', body: '' };
        } else if (b.type === 'redacted_thinking' && typeof b['data'] === 'string') {
          yield chunk({ thinking_blocks: [{ type: 'redacted_thinking', data: b['data'] }] });
        } else if (b.type === 'tool_use') {
          clientToolCalls = true;
          const idx = nextTool++;
          toolIndex.set(ev.index, idx);
          const tc: ToolCallDelta = {
            index: idx,
            id: String(b['id']),
            type: 'function',
            function: { name: String(b['name']), arguments: '' },
          };
          yield chunk({ tool_calls: [tc] });
        } else if (b.type === 'text' && typeof b['text'] === 'string' && b['text'] !== '') {
          yield chunk({ content: b['text'] });
        }
        break;
      }
      case 'content_block_delta': {
        const d = ev.delta;
        if (d.type === 'text_delta' && typeof d['text'] === 'string') {
          if (d['text'] !== '') yield chunk({ content: d['text'] });
        } else if (d.type === 'input_json_delta' && responseBlocks.has(ev.index)) {
          const piece = typeof d['partial_json'] === 'string' ? d['partial_json'] : '';
          const out = unwrap ? unwrapPiece(unwrap, piece) : piece;
          if (out !== '') yield chunk({ content: out });
        } else if (d.type === 'thinking_delta' && typeof d['thinking'] === 'string') {
          if (d['thinking'] !== '') yield chunk({ reasoning_content: d['thinking'] });
        } else if (d.type === 'signature_delta' && typeof d['signature'] === 'string') {
          yield chunk({ thinking_blocks: [{ type: 'thinking', thinking: '', signature: d['signature'] }] });
        } else if (d.type === 'input_json_delta' && typeof d['partial_json'] === 'string') {
          const idx = toolIndex.get(ev.index);
          if (idx !== undefined && d['partial_json'] !== '') {
            yield chunk({ tool_calls: [{ index: idx, function: { arguments: d['partial_json'] } }] });
          }
        }
        // citations_delta: not translated.
        break;
      }
      case 'content_block_stop':
        if (responseBlocks.has(ev.index) && unwrap) {
          const rest = unwrapEnd(unwrap);
          if (rest !== '') yield chunk({ content: rest });
          unwrap = undefined;
        }
        break;
      case 'message_delta': {
        finish =
          responseBlocks.size > 0 && !clientToolCalls && ev.delta.stop_reason === 'tool_use'
            ? 'stop'
            : mapStopReason(ev.delta.stop_reason);
        usage = mergeUsage(usage, ev.usage);
        opts.onUsage?.(usage);
        break;
      }
      case 'message_stop': {
        if (!started)
          throw new PorticoError('upstream_error', 'Anthropic stream ended before message_start.', {
            upstream: { backend: opts.backendId ?? 'anthropic', class: 'protocol' },
          });
        yield chunk({}, finish ?? 'stop');
        if (opts.includeUsage) {
          yield {
            id,
            object: 'chat.completion.chunk',
            created,
            model,
            choices: [],
            usage: toOpenAIUsage(usage),
          };
        }
        return;
      }
      default:
        // Unknown event types are skipped for forward compatibility.
        break;
    }
  }
  throw new PorticoError('upstream_error', 'Anthropic stream ended without message_stop.', {
    upstream: { backend: opts.backendId ?? 'anthropic', class: 'stream_cut' },
  });
}

/**
 * Streams `{"value": X}` as X: the text up to the first ':' is the wrapper's head, and the final
 * '}' (held back until the block ends) is its tail. Whitespace is Anthropic's own JSON, unchanged.
 */
function unwrapPiece(u: { head: string; body: string }, piece: string): string {
  let p = piece;
  if (!u.head.includes(':')) {
    const i = p.indexOf(':');
    if (i < 0) {
      u.head += p;
      return '';
    }
    u.head += p.slice(0, i + 1);
    p = p.slice(i + 1);
  }
  u.body += p;
  // Hold back the trailing "}" (and whitespace) until the block ends.
  const keep = /\}?\s*$/.exec(u.body)?.[0].length ?? 0;
  const out = u.body.slice(0, u.body.length - keep);
  u.body = u.body.slice(u.body.length - keep);
  return out;
}

function unwrapEnd(u: { head: string; body: string }): string {
  return u.body.replace(/\}\s*$/, '');
}

/** message_delta usage is cumulative: fields present overwrite, absent ones keep message_start's. */
function mergeUsage(base: AnthropicUsage, d: AnthropicMessageDeltaUsage): AnthropicUsage {
  const u: AnthropicUsage = { ...base, output_tokens: d.output_tokens ?? base.output_tokens };
  if (d.input_tokens != null) u.input_tokens = d.input_tokens;
  if (d.cache_read_input_tokens != null) u.cache_read_input_tokens = d.cache_read_input_tokens;
  if (d.cache_creation_input_tokens != null) u.cache_creation_input_tokens = d.cache_creation_input_tokens;
  return u;
}

function toOpenAIUsage(u: AnthropicUsage): Usage {
  return mapUsage(u);
}
