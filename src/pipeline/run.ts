/**
 * The pipeline, composed: authenticate -> validate -> resolve model -> token policy -> shape prompt
 * -> (admit) -> (cache) -> route + dispatch -> respond -> finish (account). Every entry point
 * (/v1/*, /ask, team routes, the console playground) goes through these functions; none has a
 * private path around them.
 */
import type {
  ChatCompletionChunk,
  ChatCompletionRequest,
  ChatCompletionResponse,
  CompletionChunk,
  CompletionResponse,
  EmbeddingRequest,
  EmbeddingResponse,
  RerankRequest,
  RerankResponse,
  Usage,
} from '../providers/openai-types.js';
import type { Logger } from '../telemetry/logger.js';
import { ANONYMOUS_TENANT, UNKNOWN_MODEL, type GatewayMetrics } from '../telemetry/metrics.js';
import { authenticate, type KeyLookup, type TenantLookup } from './authenticate.js';
import type { RequestContext } from './context.js';
import { dispatchStream, dispatchUnary } from './dispatch.js';
import { applyTokenPolicy, resolveModel } from './resolve-model.js';
import { shapeMessages } from './shape-prompt.js';
import type { TenantRuntime } from './snapshot.js';
import {
  validateChatRequest,
  validateCompletionRequest,
  validateEmbeddingRequest,
  validateRerankRequest,
} from './validate.js';

export type FinishHook = (ctx: RequestContext, status: number) => void;

export interface PipelineDeps {
  metrics: GatewayMetrics;
  logger: Logger;
  lookupKey?: KeyLookup;
  lookupTenant?: TenantLookup;
  /** Run once per finished request, after metrics (ledger, audit, ...). Must not throw. */
  onFinish: FinishHook[];
}

export type Outcome<T, C> = { kind: 'json'; body: T } | { kind: 'stream'; chunks: AsyncIterable<C> };

/** Stage 1 for every tenant endpoint. */
export async function beginTenantRequest(
  deps: PipelineDeps,
  ctx: RequestContext,
  presentedKey: string | undefined,
): Promise<TenantRuntime> {
  const tenant = await authenticate(ctx, presentedKey, deps.lookupKey, deps.lookupTenant);
  deps.metrics.inFlight.labels(tenant.id).inc();
  return tenant;
}

/** Capture usage from a stream; hide the usage-only chunk unless the client asked for it. */
async function* trackUsage<C extends { usage?: Usage | null; choices: unknown[] }>(
  ctx: RequestContext,
  chunks: AsyncIterable<C>,
  clientWantsUsage: boolean,
): AsyncGenerator<C> {
  for await (const c of chunks) {
    if (c.usage) ctx.usage = c.usage;
    if (!clientWantsUsage && c.choices.length === 0 && c.usage) continue;
    if (!clientWantsUsage && c.usage === null) delete c.usage;
    yield c;
  }
}

export async function runChat(
  deps: PipelineDeps,
  ctx: RequestContext,
  tenant: TenantRuntime,
  body: unknown,
): Promise<Outcome<ChatCompletionResponse, ChatCompletionChunk>> {
  const req = validateChatRequest(body);
  const pool = resolveModel(ctx, tenant, req.model);
  applyTokenPolicy(tenant, req);
  const shaped: ChatCompletionRequest = { ...req, messages: shapeMessages(tenant, req.messages) };
  if (req.stream === true) {
    ctx.stream = true;
    const wantsUsage = req.stream_options?.include_usage === true;
    const chunks = await dispatchStream(deps, ctx, pool, (b, pctx) => b.provider.chatStream(shaped, pctx));
    return { kind: 'stream', chunks: trackUsage(ctx, chunks, wantsUsage) };
  }
  const res = await dispatchUnary(deps, ctx, pool, (b, pctx) => b.provider.chat(shaped, pctx));
  if (res.usage) ctx.usage = res.usage;
  return { kind: 'json', body: res };
}

export async function runCompletion(
  deps: PipelineDeps,
  ctx: RequestContext,
  tenant: TenantRuntime,
  body: unknown,
): Promise<Outcome<CompletionResponse, CompletionChunk>> {
  const req = validateCompletionRequest(body);
  const pool = resolveModel(ctx, tenant, req.model);
  applyTokenPolicy(tenant, req);
  if (req.stream === true) {
    ctx.stream = true;
    const wantsUsage = req.stream_options?.include_usage === true;
    const chunks = await dispatchStream(deps, ctx, pool, (b, pctx) => b.provider.completionStream(req, pctx));
    return { kind: 'stream', chunks: trackUsage(ctx, chunks, wantsUsage) };
  }
  const res = await dispatchUnary(deps, ctx, pool, (b, pctx) => b.provider.completion(req, pctx));
  if (res.usage) ctx.usage = res.usage;
  return { kind: 'json', body: res };
}

export async function runEmbeddings(
  deps: PipelineDeps,
  ctx: RequestContext,
  tenant: TenantRuntime,
  body: unknown,
): Promise<EmbeddingResponse> {
  const req: EmbeddingRequest = validateEmbeddingRequest(body);
  const pool = resolveModel(ctx, tenant, req.model);
  const res = await dispatchUnary(deps, ctx, pool, (b, pctx) => b.provider.embeddings(req, pctx));
  ctx.usage = {
    prompt_tokens: res.usage.prompt_tokens,
    completion_tokens: 0,
    total_tokens: res.usage.total_tokens,
  };
  return res;
}

export async function runRerank(
  deps: PipelineDeps,
  ctx: RequestContext,
  tenant: TenantRuntime,
  body: unknown,
): Promise<RerankResponse> {
  const req: RerankRequest = validateRerankRequest(body);
  const pool = resolveModel(ctx, tenant, req.model);
  const res = await dispatchUnary(deps, ctx, pool, (b, pctx) => b.provider.rerank(req, pctx));
  ctx.usage = {
    prompt_tokens: res.usage.prompt_tokens,
    completion_tokens: 0,
    total_tokens: res.usage.total_tokens,
  };
  return res;
}

/** Last stage, exactly once per request: metrics, then the finish hooks (ledger, audit, ...). */
export function finishRequest(deps: PipelineDeps, ctx: RequestContext, status: number): void {
  if (ctx.finished) return;
  ctx.finished = true;
  const tenant = ctx.tenant?.id ?? ANONYMOUS_TENANT;
  const model = ctx.model ?? UNKNOWN_MODEL;
  const seconds = (performance.now() - ctx.startedAt) / 1000;
  const m = deps.metrics;
  m.recordRequest({
    tenant,
    model,
    route: ctx.route,
    endpoint: ctx.endpoint,
    method: ctx.method,
    status,
    seconds,
  });
  if (ctx.tenant) m.inFlight.labels(tenant).dec();
  if (ctx.usage && ctx.model) {
    m.tokens.labels(tenant, model, 'input').inc(ctx.usage.prompt_tokens);
    m.tokens.labels(tenant, model, 'output').inc(ctx.usage.completion_tokens);
  }
  for (const hook of deps.onFinish) {
    try {
      hook(ctx, status);
    } catch (err) {
      deps.logger.error({ err, requestId: ctx.requestId }, 'finish hook failed');
    }
  }
}
