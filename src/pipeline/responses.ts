/**
 * The Responses API on the one pipeline: the request becomes a canonical chat request (with the
 * stored conversation of `previous_response_id` before it), runs through runChat (tenant prompt,
 * limits, quotas, cache, routing, dispatch, accounting), and the answer or stream is turned back
 * into a response object or typed events. With `store` (default true) the response is kept in the
 * state store, per tenant, for `responses.ttl_hours`.
 */
import { PorticoError } from '../errors/portico-error.js';
import type { ChatMessage, Usage } from '../providers/openai-types.js';
import {
  chatToResponse,
  newResponseId,
  parseResponsesRequest,
  responseIdOfItem,
  ResponsesStream,
  toChatRequest,
  type InputItem,
  type ItemReference,
  type OutputItem,
  type ParsedResponsesRequest,
  type ResponseObject,
  type ResponseStreamEvent,
} from '../providers/openai-responses/index.js';
import type { JsonValue, ResponseStore } from '../state/index.js';
import { countMessages, countText } from '../tenancy/tokens.js';
import type { RequestContext } from './context.js';
import { billedUsage, runChat, type PipelineDeps } from './run.js';
import { runNativeResponses, speaksResponses } from './responses-native.js';
import type { TenantRuntime } from './snapshot.js';

/** What the state store keeps for one response. */
export interface StoredResponseDoc {
  response: ResponseObject;
  /** This request's input items (GET /v1/responses/{id}/input_items). */
  input_items: InputItem[];
  /** The whole conversation up to and including this response's output (the next turn's history). */
  conversation: InputItem[];
  /** Set when a backend that speaks the Responses API answered (native pass-through). */
  native?: {
    /** The backend's own response id (its previous_response_id for the next turn). */
    upstream_id: string;
    /** Portico's output item ids -> the backend's. */
    items: Record<string, string>;
  };
}

export type ResponsesOutcome =
  | { kind: 'json'; body: ResponseObject }
  | { kind: 'stream'; events: AsyncIterable<ResponseStreamEvent>; writer: ResponsesStream };

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** How often (at most) a replica purges expired responses, piggy-backed on a store. */
const PURGE_EVERY_MS = 10 * 60_000;
let lastPurge = 0;

function storeOf(deps: PipelineDeps): ResponseStore {
  if (!deps.responses) throw new PorticoError('internal_error', 'no response store configured');
  return deps.responses;
}

function notFound(id: string, param: string | undefined): PorticoError {
  return new PorticoError(
    'not_found',
    `No response with id ${JSON.stringify(id.slice(0, 80))} found (it may have expired, been deleted, or been created with store: false).`,
    param ? { param } : {},
  );
}

/** Ids Portico mints; anything else cannot be stored, so it is a 404 without a store lookup. */
export const RESPONSE_ID = /^resp_[0-9a-f]{32}$/;

export async function loadResponse(
  deps: PipelineDeps,
  tenant: string,
  id: string,
  param?: string,
): Promise<StoredResponseDoc> {
  if (!RESPONSE_ID.test(id)) throw notFound(id, param);
  const rec = await storeOf(deps).get(tenant, id);
  if (!rec) throw notFound(id, param);
  return rec.data as unknown as StoredResponseDoc;
}

export async function deleteResponse(deps: PipelineDeps, tenant: string, id: string): Promise<void> {
  if (!RESPONSE_ID.test(id) || !(await storeOf(deps).delete(tenant, id))) throw notFound(id, undefined);
}

/** Output items as the input items that replay them in a later turn. */
export function outputAsInput(output: OutputItem[]): InputItem[] {
  // Only messages and function calls replay as chat (native backends may add other item types).
  return output
    .filter((o) => o.type === 'message' || o.type === 'function_call')
    .map((o): InputItem =>
      o.type === 'message'
        ? {
            type: 'message',
            role: 'assistant',
            content: o.content.map((c) => ({ type: 'output_text', text: c.text })),
            id: o.id,
          }
        : { type: 'function_call', call_id: o.call_id, name: o.name, arguments: o.arguments, id: o.id },
    );
}

/** Replace item references with the items of the tenant's stored responses they name. */
export async function resolveInput(
  deps: PipelineDeps,
  tenant: string,
  input: Array<InputItem | ItemReference>,
): Promise<InputItem[]> {
  const docs = new Map<string, StoredResponseDoc>();
  const out: InputItem[] = [];
  for (const it of input) {
    if (it.type !== 'item_reference') {
      out.push(it);
      continue;
    }
    const rid = responseIdOfItem(it.id);
    const missing = new PorticoError('invalid_request', `Item with id ${JSON.stringify(it.id)} not found.`, {
      param: it.param,
    });
    if (!rid) throw missing;
    let doc = docs.get(rid);
    if (!doc) {
      const rec = await storeOf(deps).get(tenant, rid);
      if (!rec) throw missing;
      doc = rec.data as unknown as StoredResponseDoc;
      docs.set(rid, doc);
    }
    const found = outputAsInput(doc.response.output).find((x) => x.id === it.id);
    if (!found) throw missing;
    out.push(found);
  }
  return out;
}

export async function save(
  deps: PipelineDeps,
  ctx: RequestContext,
  tenant: string,
  response: ResponseObject,
  input: InputItem[],
  history: InputItem[],
  native?: StoredResponseDoc['native'],
): Promise<void> {
  const now = Date.now();
  const doc: StoredResponseDoc = {
    response,
    input_items: input,
    conversation: [...history, ...input, ...outputAsInput(response.output)],
    ...(native ? { native } : {}),
  };
  const store = storeOf(deps);
  await store.put({
    tenant,
    id: response.id,
    data: doc as unknown as JsonValue,
    createdAt: now,
    expiresAt: now + ctx.snapshot.config.responses.ttl_hours * 3_600_000,
  });
  if (now - lastPurge > PURGE_EVERY_MS) {
    lastPurge = now;
    store
      .purgeExpired()
      .catch((err: unknown) => deps.logger.warn({ err }, 'purging expired responses failed'));
  }
}

/**
 * Usage for the response object: the upstream's, else the count accounting bills (tool-call
 * arguments and reasoning included, which `text` lacks).
 */
function usageFor(
  ctx: RequestContext,
  messages: ChatMessage[],
  upstream: Usage | undefined,
  text: string,
): Usage {
  const u = upstream ?? ctx.usage ?? billedUsage(ctx);
  if (u) return u;
  const prompt = ctx.promptTokensEstimate ?? countMessages(messages);
  const completion = countText(text);
  return { prompt_tokens: prompt, completion_tokens: completion, total_tokens: prompt + completion };
}

export async function runResponses(
  deps: PipelineDeps,
  ctx: RequestContext,
  tenant: TenantRuntime,
  body: unknown,
): Promise<ResponsesOutcome> {
  try {
    return await runResponsesInner(deps, ctx, tenant, body);
  } catch (err) {
    // The output cap is `max_output_tokens` in this API: name it so in the error.
    if (err instanceof PorticoError && err.code === 'max_tokens_exceeded')
      throw new PorticoError(err.code, err.message.replace(/^max_tokens\b/, 'max_output_tokens'), {
        param: 'max_output_tokens',
        headers: err.headers,
      });
    throw err;
  }
}

async function runResponsesInner(
  deps: PipelineDeps,
  ctx: RequestContext,
  tenant: TenantRuntime,
  body: unknown,
): Promise<ResponsesOutcome> {
  const alias = isRecord(body) && typeof body.model === 'string' ? body.model : undefined;
  if (alias !== undefined && speaksResponses(ctx, tenant, alias))
    return runNativeResponses(deps, ctx, tenant, body as Record<string, unknown>);
  const req: ParsedResponsesRequest = parseResponsesRequest(body);
  const history = req.previous_response_id
    ? (await loadResponse(deps, tenant.id, req.previous_response_id, 'previous_response_id')).conversation
    : [];
  const input = await resolveInput(deps, tenant.id, req.input);
  const chat = toChatRequest(req, [...history, ...input]);
  const who = { id: newResponseId(), created_at: Math.floor(Date.now() / 1000) };
  const out = await runChat(deps, ctx, tenant, chat);
  if (out.kind === 'json') {
    const text = out.body.choices[0]?.message.content ?? '';
    const response = chatToResponse(req, who, out.body, usageFor(ctx, chat.messages, out.body.usage, text));
    if (req.store) await save(deps, ctx, tenant.id, response, input, history);
    return { kind: 'json', body: response };
  }
  // runChat answers bytes or raw streams only to callers that ask for them (opts.passThrough).
  if (out.kind !== 'stream') throw new Error(`runChat answered ${out.kind} without passThrough`);
  const writer = new ResponsesStream(req, who);
  const events = writer.events(
    out.chunks,
    (u, text) => usageFor(ctx, chat.messages, u, text),
    async ({ response }) => {
      // A store that fails fails the stream (error + response.failed), as it fails a JSON answer:
      // a client is never told `store: true` about a response it cannot continue from.
      if (req.store) await save(deps, ctx, tenant.id, response, input, history);
    },
  );
  return { kind: 'stream', events, writer };
}
