/**
 * Inbound direction: OpenAI chat.completion.chunk stream -> Anthropic stream events, in the order
 * https://docs.anthropic.com/en/api/messages-streaming requires: message_start; per content block
 * content_block_start, content_block_delta (text_delta | input_json_delta)*, content_block_stop;
 * then message_delta (stop_reason + usage) and message_stop. Blocks never interleave: a new block
 * starts only after the previous one stopped.
 */
import type { ChatCompletionChunk, FinishReason, Usage } from '../../openai-types.js';
import type { AnthropicSseEvent, AnthropicStreamEvent } from '../types.js';
import { finishReasonToStopReason, messageId, usageToAnthropic } from './response.js';

export interface ToAnthropicStreamOptions {
  /** Model name to report (the one the client asked for). */
  model: string;
  /** Message id; defaults to one derived from the first chunk's id. */
  id?: string;
  /**
   * Estimated prompt tokens for message_start (OpenAI reports usage only at the end). The final
   * message_delta always carries the real input_tokens when the backend reported usage.
   */
  inputTokensHint?: number;
  /**
   * The usage to report when the stream ended without any (a backend that reports no usage):
   * the gateway's count, the one it bills, asked for once the last chunk has been read.
   */
  usage?: () => Usage | undefined;
}

function ev<T extends AnthropicStreamEvent>(data: T): AnthropicSseEvent {
  return { event: data.type, data };
}

type OpenBlock =
  | { kind: 'text'; index: number }
  | { kind: 'thinking'; index: number }
  | { kind: 'tool'; index: number; openaiIndex: number };

export async function* openAIChunksToAnthropicEvents(
  chunks: AsyncIterable<ChatCompletionChunk>,
  opts: ToAnthropicStreamOptions,
): AsyncGenerator<AnthropicSseEvent> {
  let started = false;
  let open: OpenBlock | undefined;
  let nextBlock = 0;
  let finish: FinishReason = null;
  let usage: Usage | undefined;
  /** OpenAI tool index -> Anthropic block index, for tools already started. */
  const toolBlocks = new Map<number, number>();

  const start = (id: string | undefined): AnthropicSseEvent => {
    started = true;
    return ev({
      type: 'message_start',
      message: {
        id: opts.id ?? messageId(id),
        type: 'message',
        role: 'assistant',
        model: opts.model,
        content: [],
        stop_reason: null,
        stop_sequence: null,
        usage: { input_tokens: opts.inputTokensHint ?? 0, output_tokens: 0 },
      },
    });
  };
  function* close(): Generator<AnthropicSseEvent> {
    if (open) {
      yield ev({ type: 'content_block_stop', index: open.index });
      open = undefined;
    }
  }

  try {
    for await (const c of chunks) {
      if (!started) yield start(c.id);
      if (c.usage) usage = c.usage;
      const choice = c.choices[0];
      if (!choice) continue;
      const d = choice.delta;
      // Thinking: text as thinking_delta, the signature (Anthropic backends) as signature_delta.
      const reasoning = d['reasoning_content'];
      const signed = Array.isArray(d['thinking_blocks']) ? (d['thinking_blocks'] as unknown[]) : [];
      if ((typeof reasoning === 'string' && reasoning !== '') || signed.length > 0) {
        for (const b of signed) {
          const o = (typeof b === 'object' && b !== null ? b : {}) as Record<string, unknown>;
          if (o['type'] === 'redacted_thinking' && typeof o['data'] === 'string') {
            yield* close();
            const index = nextBlock++;
            yield ev({
              type: 'content_block_start',
              index,
              content_block: { type: 'redacted_thinking', data: o['data'] },
            });
            yield ev({ type: 'content_block_stop', index });
          }
        }
        const thinkingText = typeof reasoning === 'string' ? reasoning : '';
        const signature = signed
          .map((b) => (b as { signature?: unknown }).signature)
          .find((x): x is string => typeof x === 'string' && x !== '');
        if (thinkingText !== '' || signature !== undefined) {
          if (open?.kind !== 'thinking') {
            yield* close();
            open = { kind: 'thinking', index: nextBlock++ };
            yield ev({
              type: 'content_block_start',
              index: open.index,
              content_block: { type: 'thinking', thinking: '', signature: '' },
            });
          }
          if (thinkingText !== '')
            yield ev({
              type: 'content_block_delta',
              index: open.index,
              delta: { type: 'thinking_delta', thinking: thinkingText },
            });
          if (signature !== undefined)
            yield ev({
              type: 'content_block_delta',
              index: open.index,
              delta: { type: 'signature_delta', signature },
            });
        }
      }
      if (typeof d.content === 'string' && d.content !== '') {
        if (open?.kind !== 'text') {
          yield* close();
          open = { kind: 'text', index: nextBlock++ };
          yield ev({
            type: 'content_block_start',
            index: open.index,
            content_block: { type: 'text', text: '' },
          });
        }
        yield ev({
          type: 'content_block_delta',
          index: open.index,
          delta: { type: 'text_delta', text: d.content },
        });
      }
      for (const tc of d.tool_calls ?? []) {
        const known = toolBlocks.get(tc.index);
        if (known === undefined) {
          yield* close();
          open = { kind: 'tool', index: nextBlock++, openaiIndex: tc.index };
          toolBlocks.set(tc.index, open.index);
          yield ev({
            type: 'content_block_start',
            index: open.index,
            content_block: {
              type: 'tool_use',
              id: tc.id ?? `toolu_${open.index}`,
              name: tc.function?.name ?? '',
              input: {},
            },
          });
        } else if (open?.kind !== 'tool' || open.openaiIndex !== tc.index) {
          // A fragment for a tool call whose block already closed cannot be sent in Anthropic's
          // sequential format; OpenAI-compatible servers stream tool calls one after another.
          continue;
        }
        const frag = tc.function?.arguments;
        if (typeof frag === 'string' && frag !== '' && open) {
          yield ev({
            type: 'content_block_delta',
            index: open.index,
            delta: { type: 'input_json_delta', partial_json: frag },
          });
        }
      }
      if (choice.finish_reason) finish = choice.finish_reason;
    }
  } catch (e) {
    // The stream's writer ends it with Anthropic's error event (the route's SseFormat) and records
    // the failure (status, error, partial): yielding the event here made a failed stream a 200.
    if (!started) yield start(undefined);
    throw e;
  }
  if (!started) yield start(undefined);
  yield* close();
  usage ??= opts.usage?.();
  const u = usageToAnthropic(usage);
  const deltaUsage: {
    output_tokens: number;
    input_tokens?: number;
    cache_read_input_tokens?: number;
    cache_creation_input_tokens?: number;
  } = {
    output_tokens: u.output_tokens,
  };
  if (usage) {
    deltaUsage.input_tokens = u.input_tokens;
    if (u.cache_read_input_tokens != null) deltaUsage.cache_read_input_tokens = u.cache_read_input_tokens;
    if (u.cache_creation_input_tokens != null)
      deltaUsage.cache_creation_input_tokens = u.cache_creation_input_tokens;
  }
  yield ev({
    type: 'message_delta',
    delta: { stop_reason: finishReasonToStopReason(finish), stop_sequence: null },
    usage: deltaUsage,
  });
  yield ev({ type: 'message_stop' });
}

/** Encodes one event as SSE text: `event: <name>\ndata: <json>\n\n`. */
export function encodeAnthropicSse(e: AnthropicSseEvent): string {
  return `event: ${e.event}\ndata: ${JSON.stringify(e.data)}\n\n`;
}
