/**
 * Canonical chat chunks -> the Responses API's typed stream events, in the order the official
 * SDK's `responses.stream()` accumulator expects:
 *   response.created, response.in_progress,
 *   per message:  output_item.added, content_part.added, output_text.delta*, output_text.done,
 *                 content_part.done, output_item.done
 *   per call:     output_item.added, function_call_arguments.delta*, function_call_arguments.done,
 *                 output_item.done
 *   response.completed (or response.incomplete) with usage.
 * Every event carries `sequence_number` (0, 1, 2, ...). A failure mid-way ends the stream with
 * `error` then `response.failed`.
 */
import type { PorticoError } from '../../errors/portico-error.js';
import type { ChatCompletionChunk, FinishReason, Usage } from '../openai-types.js';
import type { ParsedResponsesRequest } from './convert-request.js';
import {
  itemId,
  responseObject,
  statusOf,
  toResponseUsage,
  type ResponseIdentity,
} from './convert-response.js';
import type {
  FunctionCallItem,
  MessageItem,
  OutputItem,
  ResponseObject,
  ResponseStreamEvent,
} from './types.js';

interface OpenMessage {
  kind: 'message';
  index: number;
  item: MessageItem;
  text: string;
}
interface OpenCall {
  kind: 'call';
  index: number;
  item: FunctionCallItem;
}

export interface StreamEnd {
  /** The final response (status completed or incomplete), for storing. */
  response: ResponseObject;
}

export class ResponsesStream {
  #seq = 0;
  readonly #req: ParsedResponsesRequest;
  readonly #who: ResponseIdentity;
  #output: OutputItem[] = [];

  constructor(req: ParsedResponsesRequest, who: ResponseIdentity) {
    this.#req = req;
    this.#who = who;
  }

  /** Continue the numbering of a stream written by someone else (native pass-through). */
  continueAfter(lastSequence: number): void {
    this.#seq = lastSequence + 1;
  }

  #ev(type: string, body: Record<string, unknown>): ResponseStreamEvent {
    return { type, sequence_number: this.#seq++, ...body };
  }

  /**
   * The events for a chat stream. `usageOf` gives the usage when the stream is over (the
   * upstream's, or Portico's count); `onEnd` runs (awaited) before `response.completed` is sent,
   * so a stored response can be read as soon as the client has seen it complete.
   */
  async *events(
    chunks: AsyncIterable<ChatCompletionChunk>,
    usageOf: (upstream: Usage | undefined, text: string) => Usage,
    onEnd: (end: StreamEnd) => Promise<void>,
  ): AsyncGenerator<ResponseStreamEvent> {
    const req = this.#req;
    const who = this.#who;
    yield this.#ev('response.created', { response: responseObject(req, who, [], 'in_progress', null) });
    yield this.#ev('response.in_progress', { response: responseObject(req, who, [], 'in_progress', null) });
    let message: OpenMessage | undefined;
    const calls = new Map<number, OpenCall>();
    const open: Array<OpenMessage | OpenCall> = [];
    let finish: FinishReason | undefined;
    let usage: Usage | undefined;
    let allText = '';
    for await (const chunk of chunks) {
      if (chunk.usage) usage = chunk.usage;
      const choice = chunk.choices[0];
      if (!choice) continue;
      if (choice.finish_reason) finish = choice.finish_reason;
      const delta = choice.delta;
      if (typeof delta.content === 'string' && delta.content !== '') {
        if (!message) {
          const index = this.#output.length;
          const item: MessageItem = {
            type: 'message',
            id: itemId(who.id, 'msg', index),
            status: 'in_progress',
            role: 'assistant',
            content: [],
          };
          this.#output.push(item);
          message = { kind: 'message', index, item, text: '' };
          open.push(message);
          yield this.#ev('response.output_item.added', { output_index: index, item: structuredClone(item) });
          yield this.#ev('response.content_part.added', {
            item_id: item.id,
            output_index: index,
            content_index: 0,
            part: { type: 'output_text', text: '', annotations: [], logprobs: [] },
          });
        }
        message.text += delta.content;
        allText += delta.content;
        yield this.#ev('response.output_text.delta', {
          item_id: message.item.id,
          output_index: message.index,
          content_index: 0,
          delta: delta.content,
          logprobs: [],
        });
      }
      for (const tc of delta.tool_calls ?? []) {
        let call = calls.get(tc.index);
        if (!call) {
          const index = this.#output.length;
          const item: FunctionCallItem = {
            type: 'function_call',
            id: itemId(who.id, 'fc', index),
            call_id: tc.id ?? `call_${who.id.slice(5, 29)}_${tc.index}`,
            name: tc.function?.name ?? '',
            arguments: '',
            status: 'in_progress',
          };
          this.#output.push(item);
          call = { kind: 'call', index, item };
          calls.set(tc.index, call);
          open.push(call);
          yield this.#ev('response.output_item.added', { output_index: index, item: structuredClone(item) });
        } else if (tc.function?.name && call.item.name === '') call.item.name = tc.function.name;
        const args = tc.function?.arguments;
        if (args) {
          call.item.arguments += args;
          yield this.#ev('response.function_call_arguments.delta', {
            item_id: call.item.id,
            output_index: call.index,
            delta: args,
          });
        }
      }
    }
    const status = statusOf(finish);
    const itemStatus = status === 'completed' ? 'completed' : 'incomplete';
    // Close every item, in output order.
    for (const o of open) {
      if (o.kind === 'message') {
        const part = { type: 'output_text' as const, text: o.text, annotations: [], logprobs: [] };
        yield this.#ev('response.output_text.done', {
          item_id: o.item.id,
          output_index: o.index,
          content_index: 0,
          text: o.text,
          logprobs: [],
        });
        yield this.#ev('response.content_part.done', {
          item_id: o.item.id,
          output_index: o.index,
          content_index: 0,
          part,
        });
        o.item.content = [part];
      } else {
        yield this.#ev('response.function_call_arguments.done', {
          item_id: o.item.id,
          output_index: o.index,
          name: o.item.name,
          arguments: o.item.arguments,
        });
      }
      o.item.status = itemStatus;
      yield this.#ev('response.output_item.done', { output_index: o.index, item: structuredClone(o.item) });
    }
    const final = responseObject(
      this.#req,
      who,
      this.#output,
      status,
      toResponseUsage(usageOf(usage, allText)),
      finish ?? null,
    );
    await onEnd({ response: final });
    yield this.#ev(status === 'completed' ? 'response.completed' : 'response.incomplete', {
      response: final,
    });
  }

  /** The SSE text ending a stream that failed mid-way: an `error` event, then `response.failed`. */
  failure(pe: PorticoError): string {
    const body = pe.toBody().error;
    const err = this.#ev('error', { code: body.code, message: body.message, param: body.param });
    const failed = responseObject(this.#req, this.#who, this.#output, 'failed', null);
    failed.error = { code: body.code ?? 'server_error', message: body.message };
    const f = this.#ev('response.failed', { response: failed });
    return encodeResponsesSse(err) + encodeResponsesSse(f);
  }
}

export function encodeResponsesSse(e: ResponseStreamEvent): string {
  return `event: ${e.type}\ndata: ${JSON.stringify(e)}\n\n`;
}
