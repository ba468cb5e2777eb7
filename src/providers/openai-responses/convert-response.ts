/** Canonical chat answers -> Responses API response objects and output items. */
import { randomUUID } from 'node:crypto';
import type { ChatCompletionResponse, FinishReason, Usage } from '../openai-types.js';
import type { ParsedResponsesRequest } from './convert-request.js';
import type { FunctionCallItem, MessageItem, OutputItem, ResponseObject, ResponseUsage } from './types.js';

/**
 * A new response id, `resp_` + 32 hex. Its output items are `msg_<hex>_<n>` / `fc_<hex>_<n>` with
 * the same hex, so an item reference leads back to the stored response that holds the item.
 */
export function newResponseId(): string {
  return `resp_${randomUUID().replaceAll('-', '')}`;
}

export function itemId(responseId: string, kind: string, n: number): string {
  return `${kind}_${responseId.slice('resp_'.length)}_${n}`;
}

/** The response id an output item id was minted under (undefined for ids Portico did not mint). */
export function responseIdOfItem(id: string): string | undefined {
  const m = /^[a-z]{1,16}_([0-9a-f]{32})_\d+$/.exec(id);
  return m ? `resp_${m[1]}` : undefined;
}

export function toResponseUsage(u: Usage): ResponseUsage {
  const cached = u.prompt_tokens_details?.cached_tokens;
  const reasoning = u.completion_tokens_details?.reasoning_tokens;
  return {
    input_tokens: u.prompt_tokens,
    input_tokens_details: { cached_tokens: typeof cached === 'number' ? cached : 0 },
    output_tokens: u.completion_tokens,
    output_tokens_details: { reasoning_tokens: typeof reasoning === 'number' ? reasoning : 0 },
    total_tokens: u.total_tokens,
  };
}

export interface ResponseIdentity {
  id: string;
  /** Seconds since the epoch. */
  created_at: number;
}

/** The response object, whatever its state, echoing the request's parameters as OpenAI does. */
export function responseObject(
  req: ParsedResponsesRequest,
  who: ResponseIdentity,
  output: OutputItem[],
  status: ResponseObject['status'],
  usage: ResponseUsage | null,
  finish?: FinishReason,
): ResponseObject {
  return {
    id: who.id,
    object: 'response',
    created_at: who.created_at,
    status,
    background: false,
    error: null,
    incomplete_details:
      status === 'incomplete'
        ? { reason: finish === 'content_filter' ? 'content_filter' : 'max_output_tokens' }
        : null,
    instructions: req.instructions,
    max_output_tokens: req.max_output_tokens,
    metadata: req.metadata,
    model: req.model,
    output,
    parallel_tool_calls: req.parallel_tool_calls,
    previous_response_id: req.previous_response_id,
    reasoning: { effort: null, summary: null },
    service_tier: 'default',
    store: req.store,
    temperature: req.temperature,
    text: req.text,
    tool_choice: req.tool_choice,
    tools: req.tools,
    top_p: req.top_p,
    truncation: 'disabled',
    usage,
    user: req.user,
  };
}

/** finish_reason -> the response's final status. */
export function statusOf(finish: FinishReason | undefined): 'completed' | 'incomplete' {
  return finish === 'length' || finish === 'content_filter' ? 'incomplete' : 'completed';
}

/** A non-streamed chat answer as a Responses API response. */
export function chatToResponse(
  req: ParsedResponsesRequest,
  who: ResponseIdentity,
  res: ChatCompletionResponse,
  usage: Usage,
): ResponseObject {
  const choice = res.choices[0];
  const output: OutputItem[] = [];
  const text = choice?.message.content ?? '';
  const status = statusOf(choice?.finish_reason ?? null);
  if (text !== '' || !choice?.message.tool_calls?.length) {
    const msg: MessageItem = {
      type: 'message',
      id: itemId(who.id, 'msg', 0),
      status: status === 'completed' ? 'completed' : 'incomplete',
      role: 'assistant',
      content: [{ type: 'output_text', text, annotations: [], logprobs: [] }],
    };
    output.push(msg);
  }
  for (const call of choice?.message.tool_calls ?? []) {
    const fc: FunctionCallItem = {
      type: 'function_call',
      id: itemId(who.id, 'fc', output.length),
      call_id: call.id,
      name: call.function.name,
      arguments: call.function.arguments,
      status: 'completed',
    };
    output.push(fc);
  }
  return responseObject(req, who, output, status, toResponseUsage(usage), choice?.finish_reason ?? null);
}
