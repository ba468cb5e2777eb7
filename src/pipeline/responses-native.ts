/**
 * Native pass-through of the Responses API to backends that speak it (`responses_api: native` on
 * an OpenAI-protocol backend). The body goes to the backend's own /responses, but still through
 * the pipeline's governance: authentication and request limits (already done), model access and
 * routing, the tenant's system prompt (as `instructions`), the output cap, token limits and
 * quotas (estimated from the convertible part of the input, settled with the backend's usage),
 * dispatch (retries, circuit, fallback), accounting and audit. Response and item ids are
 * Portico's own (mapped to the backend's), so stored responses stay per tenant: a tenant can
 * continue (`previous_response_id`) or reference (`item_reference`) only its own.
 * Not applied here: the response cache and PII redaction (a tenant with redact_pii_upstream is
 * always bridged).
 */
import { PorticoError } from '../errors/portico-error.js';
import type { UsageEstimates } from '../providers/usage.js';
import {
  itemsToMessages,
  newResponseId,
  parseResponsesRequest,
  responseIdOfItem,
  ResponsesStream,
  type InputItem,
  type OutputItem,
  type ResponseObject,
  type ResponseStreamEvent,
} from '../providers/openai-responses/index.js';
import { countMessages, countText } from '../tenancy/tokens.js';
import { stageSync } from '../telemetry/tracing.js';
import { capOutput, modelMaxOutput } from './admit.js';
import type { RequestContext } from './context.js';
import { dispatchStream, dispatchUnary } from './dispatch.js';
import { applyTokenPolicy, resolveModel } from './resolve-model.js';
import {
  loadResponse,
  outputAsInput,
  resolveInput,
  save,
  type ResponsesOutcome,
  type StoredResponseDoc,
} from './responses.js';
import { admitTokens, takeUsage, type PipelineDeps } from './run.js';
import { shapeMessages } from './shape-prompt.js';
import type { TenantRuntime } from './snapshot.js';

/** True when every backend of the model's pool passes the Responses API through natively. */
export function speaksResponses(ctx: RequestContext, tenant: TenantRuntime, alias: string): boolean {
  if (tenant.redactPiiUpstream) return false;
  const pool = ctx.snapshot.pools.get(alias);
  return pool !== undefined && pool.backends.length > 0 && pool.backends.every((b) => b.provider.responses);
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Backend ids <-> Portico's: `resp_<hex>` and `<kind>_<hex>_<n>` for its output items. */
class IdMap {
  readonly ours: string;
  readonly alias: string;
  upstreamId = '';
  /** Backend item id -> Portico's. */
  readonly items = new Map<string, string>();

  constructor(ours: string, alias: string) {
    this.ours = ours;
    this.alias = alias;
  }

  item(upstream: unknown, index: number): string {
    const key = typeof upstream === 'string' ? upstream : `#${index}`;
    let mine = this.items.get(key);
    if (!mine) {
      const kind = typeof upstream === 'string' ? (/^([a-z]{1,16})_/.exec(upstream)?.[1] ?? 'item') : 'item';
      mine = `${kind}_${this.ours.slice('resp_'.length)}_${index}`;
      this.items.set(key, mine);
    }
    return mine;
  }

  response(r: Record<string, unknown>): void {
    if (typeof r.id === 'string' && r.id !== this.ours) this.upstreamId = r.id;
    r.id = this.ours;
    r.model = this.alias;
    if (Array.isArray(r.output))
      r.output.forEach((o: unknown, i) => {
        if (isRecord(o)) o.id = this.item(o.id, i);
      });
  }

  event(e: Record<string, unknown>): void {
    if (isRecord(e.response)) this.response(e.response);
    const index = typeof e.output_index === 'number' ? e.output_index : 0;
    if (isRecord(e.item)) e.item.id = this.item(e.item.id, index);
    if (typeof e.item_id === 'string') e.item_id = this.item(e.item_id, index);
  }

  /** Portico's item id -> the backend's, for the stored record. */
  reverse(): Record<string, string> {
    const out: Record<string, string> = {};
    for (const [up, mine] of this.items) if (!up.startsWith('#')) out[mine] = up;
    return out;
  }
}

/**
 * A Responses API usage (input_tokens, output_tokens) taken into the request in the chat shape,
 * normalised as every route's is (run.ts takeUsage); false when it gave no count.
 */
function takeResponsesUsage(ctx: RequestContext, u: unknown, est: UsageEstimates): boolean {
  if (!isRecord(u)) return false;
  const cached = isRecord(u.input_tokens_details) ? u.input_tokens_details.cached_tokens : undefined;
  return takeUsage(
    ctx,
    {
      prompt_tokens: u.input_tokens,
      completion_tokens: u.output_tokens,
      total_tokens: u.total_tokens,
      ...(typeof cached === 'number' ? { prompt_tokens_details: { cached_tokens: cached } } : {}),
    },
    est,
  );
}

/** The client's raw input items for the backend: item references and Portico ids mapped to the backend's. */
async function nativeInput(deps: PipelineDeps, tenant: string, raw: unknown[]): Promise<unknown[]> {
  const docs = new Map<string, StoredResponseDoc>();
  const out: unknown[] = [];
  for (const [i, item] of raw.entries()) {
    if (!isRecord(item)) {
      out.push(item);
      continue;
    }
    const copy: Record<string, unknown> = { ...item };
    const id = typeof copy.id === 'string' ? copy.id : undefined;
    const rid = id !== undefined ? responseIdOfItem(id) : undefined;
    if (copy.type !== 'item_reference') {
      // An id Portico minted means nothing to the backend.
      if (rid) delete copy.id;
      out.push(copy);
      continue;
    }
    const missing = new PorticoError(
      'invalid_request',
      `Item with id ${JSON.stringify(id ?? '')} not found.`,
      {
        param: `input[${i}].id`,
      },
    );
    if (!rid || id === undefined) throw missing;
    let doc = docs.get(rid);
    if (!doc) {
      doc = await loadResponse(deps, tenant, rid).catch(() => undefined);
      if (!doc) throw missing;
      docs.set(rid, doc);
    }
    const upstreamItem = doc.native?.items[id];
    if (upstreamItem) out.push({ type: 'item_reference', id: upstreamItem });
    else {
      const found = outputAsInput(doc.response.output).find((x) => x.id === id);
      if (!found) throw missing;
      const { id: _drop, ...rest } = found;
      out.push(rest);
    }
  }
  return out;
}

export async function runNativeResponses(
  deps: PipelineDeps,
  ctx: RequestContext,
  tenant: TenantRuntime,
  body: Record<string, unknown>,
): Promise<ResponsesOutcome> {
  const req = parseResponsesRequest(body, { native: true });
  const prev = req.previous_response_id
    ? await loadResponse(deps, tenant.id, req.previous_response_id, 'previous_response_id')
    : undefined;
  // A bridged previous response has no backend id: its conversation is replayed as input.
  const history: InputItem[] = prev && !prev.native ? prev.conversation : [];
  const convertible = await resolveInput(deps, tenant.id, req.input);
  const messages = itemsToMessages([...history, ...convertible]);
  if (req.instructions !== null) messages.unshift({ role: 'system', content: req.instructions });

  const pool = stageSync(ctx, 'route', () => resolveModel(ctx, tenant, req.model, req.user));
  const limits: { max_tokens?: number | null } = { max_tokens: req.max_output_tokens };
  applyTokenPolicy(tenant, limits);
  const cap = await admitTokens(
    deps,
    ctx,
    tenant,
    () => countMessages(shapeMessages(tenant, messages)),
    limits.max_tokens,
    modelMaxOutput(ctx.snapshot.config, pool.alias),
  );
  capOutput(limits, cap);

  const up: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(body)) if (v !== null && v !== undefined) up[k] = v;
  delete up.stream;
  delete up.previous_response_id;
  if (prev?.native) up.previous_response_id = prev.native.upstream_id;
  const rawInput: unknown[] =
    typeof body.input === 'string'
      ? [{ role: 'user', content: body.input }]
      : Array.isArray(body.input)
        ? await nativeInput(deps, tenant.id, body.input as unknown[])
        : [];
  const historyItems = history.map(({ id: _drop, ...rest }) => rest);
  let input: unknown[] = [...historyItems, ...rawInput];
  // The tenant's system prompt, by its policy, as the backend's instructions.
  const prompt = tenant.systemPrompt;
  if (tenant.promptPolicy === 'replace') {
    input = input.filter((it) => !(isRecord(it) && (it.role === 'system' || it.role === 'developer')));
    if (prompt) up.instructions = prompt;
    else delete up.instructions;
  } else if (tenant.promptPolicy !== 'none' && prompt)
    up.instructions = req.instructions !== null ? `${prompt}\n\n${req.instructions}` : prompt;
  up.input = input;
  if (limits.max_tokens != null) up.max_output_tokens = limits.max_tokens;

  const ids = new IdMap(newResponseId(), req.model);
  const who = { id: ids.ours, created_at: Math.floor(Date.now() / 1000) };
  // Stored normalised (the convertible items), with the whole conversation so far — also when the
  // backend continues from its own id — so a later turn on a bridged model can replay it.
  const store = async (response: Record<string, unknown>): Promise<void> => {
    if (!req.store) return;
    await save(
      deps,
      ctx,
      tenant.id,
      response as unknown as ResponseObject,
      convertible,
      prev?.conversation ?? [],
      {
        upstream_id: ids.upstreamId,
        items: ids.reverse(),
      },
    );
  };

  const countPrompt = (): number => countMessages(shapeMessages(tenant, messages));
  if (!req.stream) {
    const res = await dispatchUnary(deps, ctx, pool, (b, pctx) => {
      const native = b.provider.responses;
      if (!native)
        throw new PorticoError('unsupported_operation', `backend ${b.id} does not speak the Responses API`);
      return native.create(up, pctx);
    });
    ids.response(res);
    const text = (): string => textOf(res.output);
    if (!takeResponsesUsage(ctx, res.usage, { prompt: countPrompt, completion: () => countText(text()) })) {
      ctx.promptTokensEstimate ??= countPrompt();
      ctx.outputChars = text();
    }
    if (ctx.captureOutput) ctx.outputText = textOf(res.output);
    await store(res);
    return { kind: 'json', body: res as unknown as ResponseObject };
  }
  ctx.stream = true;
  const events = await dispatchStream(deps, ctx, pool, (b, pctx) => {
    const native = b.provider.responses;
    if (!native)
      throw new PorticoError('unsupported_operation', `backend ${b.id} does not speak the Responses API`);
    return native.stream(up, pctx);
  });
  const writer = new ResponsesStream(req, who);
  // A stream that ends without the backend's usage (cut, cancelled, or no terminal event) is
  // billed as the chat paths bill one: the prompt estimated and what reached the client counted
  // (text, reasoning and function-call arguments), marked partial (review, 2026-12-07: such a
  // stream was billed nothing).
  async function* relay(): AsyncGenerator<ResponseStreamEvent> {
    let delivered = '';
    let terminal = false;
    try {
      for await (const e of events) {
        ids.event(e);
        if (typeof e.sequence_number === 'number') writer.continueAfter(e.sequence_number);
        const r = e.response;
        if (isRecord(r) && (e.type === 'response.completed' || e.type === 'response.incomplete')) {
          terminal = true;
          const done = delivered;
          takeResponsesUsage(ctx, r.usage, { prompt: countPrompt, completion: () => countText(done) });
          if (ctx.captureOutput) ctx.outputText = textOf(r.output);
          await store(r);
        } else if (isRecord(r) && e.type === 'response.failed') {
          terminal = true;
          const done = delivered;
          takeResponsesUsage(ctx, r.usage, { prompt: countPrompt, completion: () => countText(done) });
        }
        const piece =
          typeof e.type === 'string' && GENERATED_DELTAS.has(e.type) && typeof e.delta === 'string'
            ? e.delta
            : '';
        yield e as ResponseStreamEvent;
        // Back here: the consumer wrote that event to the client.
        if (piece && delivered.length < 1_000_000) delivered += piece;
      }
    } finally {
      if (!terminal) ctx.partial = true;
      if (ctx.usage === undefined) {
        ctx.outputChars = delivered;
        ctx.promptTokensEstimate ??= countPrompt();
      }
    }
  }
  return { kind: 'stream', events: relay(), writer };
}

/** Events whose `delta` is generated output (billed when the backend gives no usage). */
const GENERATED_DELTAS = new Set([
  'response.output_text.delta',
  'response.function_call_arguments.delta',
  'response.reasoning_text.delta',
  'response.reasoning_summary_text.delta',
  'response.refusal.delta',
]);

function textOf(output: unknown): string {
  if (!Array.isArray(output)) return '';
  return (output as OutputItem[])
    .filter((o) => o.type === 'message')
    .map((o) => (o.type === 'message' ? o.content.map((c) => c.text ?? '').join('') : ''))
    .join('');
}
