/**
 * The pipeline, composed: authenticate -> validate -> resolve model -> token policy -> shape prompt
 * -> admit -> (cache) -> route + dispatch -> respond -> finish (account). Every entry point
 * (/v1/*, /ask, team routes, the console playground) goes through these functions; none has a
 * private path around them.
 */
import type {
  ChatCompletionChunk,
  ChatCompletionRequest,
  ChatCompletionResponse,
  CompletionChunk,
  CompletionRequest,
  CompletionResponse,
  EmbeddingRequest,
  EmbeddingResponse,
  RerankRequest,
  RerankResponse,
  Usage,
} from '../providers/openai-types.js';
import type { Logger } from '../telemetry/logger.js';
import type { LedgerWriter, ResponseStore } from '../state/index.js';
import { ANONYMOUS_TENANT, UNKNOWN_MODEL, type GatewayMetrics } from '../telemetry/metrics.js';
import type { Tenancy } from '../tenancy/tenancy.js';
import { countEmbeddingInput, countMessages, countPrompt, countText } from '../tenancy/tokens.js';
import { cacheTokensOf, costUsd } from '../tenancy/cost.js';
import {
  admitIp,
  admitRequestRate,
  admitWork,
  capOutput,
  modelMaxOutput,
  needsTokenEstimate,
  releaseHolds,
  tokenNeed,
  type TokenNeed,
} from './admit.js';
import { authenticate, type KeyLookup } from './authenticate.js';
import type { RequestContext } from './context.js';
import {
  canPassThrough,
  dispatchRawStream,
  dispatchStream,
  dispatchUnary,
  type RawDispatched,
} from './dispatch.js';
import type { Backend } from '../routing/pool.js';
import { Cancel } from '../lib/abort.js';
import type { ProviderStream } from '../providers/spec.js';
import {
  inputUsageOf,
  normalizeUsage,
  tokenCount,
  wholeUsage,
  type UsageEstimates,
} from '../providers/usage.js';
import { isTokenPrompt, promptList } from '../providers/prompt.js';
import { isPorticoError, PorticoError } from '../errors/portico-error.js';
import { choiceText, modelOf, replaceModel, usageOf } from '../lib/sse-bytes.js';
import { planCache, serveStream, serveUnary } from './cache.js';
import type { ResponseCache } from '../cache/response-cache.js';
import { applyTokenPolicy, resolveModel, tenantModels } from './resolve-model.js';
import { shapeMessages } from './shape-prompt.js';
import { redactMessages, redactPrompt } from './redact-upstream.js';
import type { Redactor } from '../telemetry/redact.js';
import { endRequestTrace, stageSync, withStage } from '../telemetry/tracing.js';
import type { TenantRuntime } from './snapshot.js';
import type { OpenRequests } from './open-requests.js';
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
  /** Keys beyond the config snapshot (the key store). */
  lookupKey?: KeyLookup;
  /** Whether a presented key's sha256 is the admin token's (its 401 says so). */
  isAdminToken?: (sha256: string) => boolean;
  /** Limits, quotas, queue and ledger; absent = no admission control (tests of the bare core). */
  tenancy?: Tenancy;
  /** PII redaction (tenants with redact_pii_upstream). */
  redactor?: Redactor;
  /** The response cache (L1 + optional Redis L2); absent = no caching. */
  cache?: ResponseCache;
  /** Stored Responses API responses (the state store's, or in memory for a bare gateway). */
  responses?: ResponseStore;
  /** Run once per finished request, after metrics and accounting (audit, console stats, ...). Must not throw. */
  onFinish: FinishHook[];
  /** Tenant requests begun and not finished (shutdown waits for them before closing the ledger). */
  openRequests?: OpenRequests;
}

/** A stream forwarded as bytes (OpenAI SSE upstream to an OpenAI SSE client): http/sse.ts sendPassThrough. */
export interface RawOutcome {
  kind: 'raw';
  dispatched: RawDispatched;
  /** The client asked for the usage chunk (stream_options.include_usage). */
  wantsUsage: boolean;
  /** The alias as a JSON string: the `model` value every chunk must carry. */
  modelJson: Buffer;
  /** Counts the prompt (a stream cut short without upstream usage is billed with it). */
  countPrompt: () => number;
}

/** A non-streaming answer forwarded as the upstream's bytes (model set to the alias). */
export interface BytesOutcome {
  kind: 'bytes';
  body: Buffer;
}

export type Outcome<T, C> =
  { kind: 'json'; body: T } | BytesOutcome | { kind: 'stream'; chunks: AsyncIterable<C> } | RawOutcome;

/** How the caller can take a stream. */
export interface StreamOptions {
  /** The caller writes OpenAI SSE as is and can take bytes (sendPassThrough). */
  passThrough?: boolean;
}

/** The header naming the backend's own model name when it differs from the alias (openai-kind backends). */
export const UPSTREAM_MODEL_HEADER = 'x-portico-upstream-model';

const modelJsonCache = new Map<string, Buffer>();
function modelJsonOf(alias: string): Buffer {
  let b = modelJsonCache.get(alias);
  if (!b) {
    b = Buffer.from(JSON.stringify(alias));
    if (modelJsonCache.size < 10_000) modelJsonCache.set(alias, b);
  }
  return b;
}

/** What a header value may hold as it is (printable ASCII and tab); anything else is encoded. */
const PLAIN_HEADER_VALUE = /^[\t\x20-\x7e]*$/;
const MAX_UPSTREAM_MODEL_CHARS = 256;
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;

/**
 * The upstream's name in a response header. The name comes from the backend's answer, so it is
 * made safe for a header: a name with other characters (non-ASCII, control characters) is
 * percent-encoded — Node refuses such a header when the response is written (ERR_INVALID_CHAR),
 * which left the response unsent — and a name longer than 256 characters is cut.
 */
export function upstreamModelHeader(upstream: string): string {
  const name =
    upstream.length > MAX_UPSTREAM_MODEL_CHARS ? upstream.slice(0, MAX_UPSTREAM_MODEL_CHARS) : upstream;
  // encodeURIComponent throws on a lone surrogate (a JSON "\ud800", or a pair cut above).
  return PLAIN_HEADER_VALUE.test(name) ? name : encodeURIComponent(name.replace(LONE_SURROGATE, '\ufffd'));
}

function setUpstreamModel(ctx: RequestContext, upstream: string): void {
  const value = upstreamModelHeader(upstream);
  if (ctx.responseHeaders) ctx.responseHeaders[UPSTREAM_MODEL_HEADER] = value;
  else ctx.responseHeaders = { [UPSTREAM_MODEL_HEADER]: value };
}

/**
 * OpenAI-compatible backends answer with their own model name; the client gets the alias it asked
 * for (as from every other provider) and the backend's name in x-portico-upstream-model.
 */
function aliasUnary<R extends { model: string }>(ctx: RequestContext, b: Backend, alias: string, r: R): R {
  if (b.provider.kind === 'openai' && r.model !== alias) {
    if (typeof r.model === 'string') setUpstreamModel(ctx, r.model);
    r.model = alias;
  }
  return r;
}

async function* aliasChunks<C extends { model: string }>(
  ctx: RequestContext,
  alias: string,
  chunks: AsyncIterable<C>,
): AsyncGenerator<C> {
  let first = true;
  for await (const c of chunks) {
    if (c.model !== alias) {
      if (first && typeof c.model === 'string') setUpstreamModel(ctx, c.model);
      c.model = alias;
    }
    first = false;
    yield c;
  }
}

function aliasStream<C extends { model: string }>(
  ctx: RequestContext,
  b: Backend,
  alias: string,
  s: ProviderStream<C>,
): AsyncIterable<C> {
  return b.provider.kind === 'openai' ? aliasChunks(ctx, alias, s) : s;
}

/**
 * Take an upstream's usage into the request, in the one normal form (providers/usage.ts): finite
 * counts, the ones it left out estimated (and the record marked so). False when it reported no
 * count at all: the caller bills its estimate instead.
 */
export function takeUsage(ctx: RequestContext, raw: unknown, est: UsageEstimates): boolean {
  const n = normalizeUsage(raw, est);
  if (!n) return false;
  ctx.usage = n.usage;
  ctx.usageEstimated = n.estimated ? true : undefined;
  return true;
}

/** Routes whose requests are accounted in the usage ledger. */
const ACCOUNTED = new Set([
  'chat',
  'completions',
  'embeddings',
  'rerank',
  'messages',
  'responses',
  'ask',
  'predict',
]);

/** Stage 1 for every tenant endpoint: per-IP limit, authentication, requests/s limits. */
export async function beginTenantRequest(
  deps: PipelineDeps,
  ctx: RequestContext,
  presentedKey: string | undefined,
): Promise<TenantRuntime> {
  await admitIp(deps, ctx, ctx.snapshot.config.admission);
  const tenant = await withStage(ctx, 'authenticate', () =>
    authenticate(ctx, presentedKey, deps.lookupKey, deps.isAdminToken),
  );
  enterTenant(deps, ctx, tenant);
  await withStage(ctx, 'admission', () => admitRequestRate(deps, ctx, tenant, ctx.key));
  return tenant;
}

/**
 * The request is the tenant's from here: in portico_requests_in_flight and in the requests
 * shutdown waits for, until finishRequest (which runs for every request with a tenant: the caller
 * must make sure it does, on a client that leaves too — see handlerSettled).
 */
export function enterTenant(deps: PipelineDeps, ctx: RequestContext, tenant: TenantRuntime): void {
  ctx.tenant = tenant;
  deps.metrics.child.inFlight(tenant.id).inc();
  deps.openRequests?.add();
  if (ctx.trace) ctx.trace.root.setAttribute('portico.tenant', tenant.id);
}

/**
 * Tokens/min, quotas, in-flight cap: only when the tenant or key has such limits. `maxTokens` is
 * the client's (else `maxOutput`, the model's longest answer). Returns the answer's cap when a
 * token budget bound it (admit.ts), for capOutput to send upstream.
 */
export async function admitTokens(
  deps: PipelineDeps,
  ctx: RequestContext,
  tenant: TenantRuntime,
  promptTokens: () => number,
  maxTokens: number | null | undefined,
  maxOutput = 0,
): Promise<number | undefined> {
  if (!deps.tenancy) return undefined;
  const cfg = ctx.snapshot.config.admission;
  const key = ctx.key;
  let need: TokenNeed | undefined;
  if (needsTokenEstimate(tenant, key)) {
    ctx.promptTokensEstimate = promptTokens();
    need = tokenNeed(ctx.promptTokensEstimate, maxTokens ?? maxOutput, cfg);
  }
  if (!need && !tenant.limits?.max_in_flight && !key?.limits?.max_in_flight) return undefined;
  return await withStage(ctx, 'admission.tokens', () =>
    admitWork(deps, ctx, tenant, key, need, cfg, ctx.priority),
  );
}

/** The prompt prefix that prefix-affinity hashes: the first message (usually the tenant's system prompt). */
function affinityKeyOf(messages: ChatCompletionRequest['messages']): string {
  const first = messages[0];
  if (!first) return '';
  const c = first.content;
  const text =
    typeof c === 'string'
      ? c
      : Array.isArray(c)
        ? c.map((p) => (p.type === 'text' ? String(p.text) : '')).join('')
        : '';
  return `${first.role}:${text.slice(0, 512)}`;
}

/** The prefix prefix-affinity hashes for a completions prompt: its first text, or its first ids. */
function promptAffinityKey(prompt: CompletionRequest['prompt']): string {
  const first = promptList(prompt)[0] ?? '';
  return typeof first === 'string' ? first.slice(0, 512) : `ids:${first.slice(0, 128).join(',')}`;
}

/**
 * Capture usage from a stream; hide the usage-only chunk unless the client asked for it. Keeps the
 * text that reached the client (a piece counts once the consumer comes back for the next chunk,
 * i.e. after it wrote this one), so a stream cut short (the client cancelled, the upstream broke
 * off) without upstream usage is billed for what was delivered: counted with the tokenizer once,
 * at the end (accountedUsage), and marked partial. `countPrompt` counts the prompt then, when
 * admission did not.
 */
async function* trackUsage<
  C extends { usage?: Usage | null; choices: Array<{ delta?: { content?: string | null }; text?: string }> },
>(
  ctx: RequestContext,
  chunks: AsyncIterable<C>,
  clientWantsUsage: boolean,
  countPrompt: () => number,
): AsyncGenerator<C> {
  let chars = '';
  let ended = false;
  try {
    for await (const c of chunks) {
      if (c.usage) takeUsage(ctx, c.usage, { prompt: countPrompt, completion: () => countText(chars) });
      if (!clientWantsUsage && c.choices.length === 0 && c.usage) continue;
      if (!clientWantsUsage && c.usage === null) delete c.usage;
      // Text, reasoning and tool-call arguments, of every choice (n > 1): what a usage-less stream bills.
      let piece = '';
      if ((ctx.usage === undefined || ctx.captureOutput) && chars.length < 1_000_000)
        for (const choice of c.choices) piece += choiceText(choice);
      yield c;
      // Back here: the consumer has written that chunk to the client.
      if (piece) chars += piece;
    }
    ended = true;
  } finally {
    if (!ended) ctx.partial = true;
    if (ctx.usage === undefined) {
      ctx.outputChars = chars;
      // Completed or not, a stream without upstream usage is billed for its prompt too (review,
      // 2026-12-07: a completed one was billed 0 input tokens), unless the upstream reported it
      // before the cut (ctx.reportedUsage, set by dispatch before this runs).
      if (ctx.reportedUsage === undefined) ctx.promptTokensEstimate ??= countPrompt();
    }
    if (ctx.captureOutput) ctx.outputText = chars;
  }
}

/**
 * A JSON answer as bytes: usage by a targeted scan (a full parse only when there is none, for the
 * estimate), `model` set to the alias by a byte replace. No parse and no re-serialisation of the
 * answer on the common path.
 */
function unaryBytes(
  ctx: RequestContext,
  alias: string,
  buf: Buffer,
  estimate: () => number,
  textOf: (parsed: unknown) => string,
): BytesOutcome {
  const text = (): string => {
    try {
      return textOf(JSON.parse(buf.toString('utf8')));
    } catch {
      return '';
    }
  };
  const raw = usageOf(buf);
  // The common case first: whole counts, taken as they are (no estimate closures per request).
  const usage = wholeUsage(raw);
  if (usage) ctx.usage = usage;
  else if (!takeUsage(ctx, raw, { prompt: estimate, completion: () => countText(text()) })) {
    ctx.promptTokensEstimate ??= estimate();
    ctx.outputChars = text();
  }
  const { body, upstream } = replaceModel(buf, modelJsonOf(alias));
  if (upstream !== undefined) setUpstreamModel(ctx, upstream);
  return { kind: 'bytes', body };
}

/** What a usage-less chat answer is billed for: its text, reasoning and tool-call arguments. */
function chatText(parsed: unknown): string {
  const choices = (parsed as ChatCompletionResponse).choices;
  return Array.isArray(choices) ? choices.map(choiceText).join('') : '';
}

function completionText(parsed: unknown): string {
  const choices = (parsed as CompletionResponse).choices;
  return Array.isArray(choices) ? choices.map((c) => c.text ?? '').join('') : '';
}

/** Non-streaming answers as bytes: the caller forwards them, no cache or audit body needs the object. */
function bytesOk(
  opts: StreamOptions,
  plan: unknown,
  ctx: RequestContext,
  pool: Parameters<typeof canPassThrough>[1],
  completions: boolean,
): boolean {
  return (
    opts.passThrough === true &&
    !plan &&
    !ctx.captureOutput &&
    pool.backends.every((b) =>
      completions ? b.provider.completionBytes !== undefined : b.provider.chatBytes !== undefined,
    ) &&
    canPassThrough(ctx, pool, completions)
  );
}

/** A dispatched byte stream, with the upstream's model name (when not the alias) in the response header. */
function passThrough(
  ctx: RequestContext,
  alias: string,
  wantsUsage: boolean,
  d: RawDispatched,
  countPrompt: () => number,
): RawOutcome {
  // The name in the first chunk (OpenAI answers with a dated name), else the one sent upstream.
  const upstream = modelOf(d.first) ?? d.raw.upstreamModel;
  if (upstream !== undefined && upstream !== alias) setUpstreamModel(ctx, upstream);
  return { kind: 'raw', dispatched: d, wantsUsage, modelJson: modelJsonOf(alias), countPrompt };
}

/**
 * A cached stream is shared by clients that asked for the usage chunk and clients that did not
 * (stream_options is not in the key), so the leader's upstream call always asks for it: backends
 * that send usage only when asked (Anthropic, the engine, the simulator) would otherwise leave an
 * entry without it. trackUsage hides the chunk from a client that did not ask.
 */
function withStreamUsage<R extends { stream_options?: { include_usage?: boolean } | null }>(req: R): R {
  return req.stream_options?.include_usage === true
    ? req
    : { ...req, stream_options: { ...(req.stream_options ?? {}), include_usage: true } };
}

export async function runChat(
  deps: PipelineDeps,
  ctx: RequestContext,
  tenant: TenantRuntime,
  body: unknown,
  opts: StreamOptions = {},
): Promise<Outcome<ChatCompletionResponse, ChatCompletionChunk>> {
  const req = validateChatRequest(body);
  const pool = stageSync(ctx, 'route', () => resolveModel(ctx, tenant, req.model, req.user));
  applyTokenPolicy(tenant, req);
  let messages = shapeMessages(tenant, req.messages);
  if (pool.strategy === 'prefix_affinity') ctx.affinityKey = affinityKeyOf(messages);
  if (tenant.redactPiiUpstream && deps.redactor) messages = redactMessages(deps.redactor, messages);
  const shaped: ChatCompletionRequest = { ...req, messages };
  const cap = await admitTokens(
    deps,
    ctx,
    tenant,
    () => countMessages(shaped.messages),
    req.max_completion_tokens ?? req.max_tokens,
    modelMaxOutput(ctx.snapshot.config, pool.alias),
  );
  capOutput(shaped, cap);
  const plan = planCache(deps.cache, ctx, tenant, 'chat', shaped);
  if (req.stream === true) {
    ctx.stream = true;
    const wantsUsage = req.stream_options?.include_usage === true;
    if (opts.passThrough && !plan && canPassThrough(ctx, pool, false))
      return passThrough(
        ctx,
        req.model,
        wantsUsage,
        await dispatchRawStream(deps, ctx, pool, (b, pctx) =>
          (b.provider.chatStreamRaw as NonNullable<typeof b.provider.chatStreamRaw>)(shaped, pctx),
        ),
        () => countMessages(shaped.messages),
      );
    // Usage is always asked of backends that take it from the request (Anthropic, the engine, the
    // simulator; trackUsage hides the usage chunk from a client that did not ask). An OpenAI-
    // compatible backend asks by itself (force_include_usage) unless configured not to, because it
    // rejects stream_options: only a cache fill asks it then.
    const usageReq = withStreamUsage(shaped);
    const upstreamReq = plan ? usageReq : shaped;
    const chunks = await serveStream(plan, ctx, (cancel) =>
      dispatchStream(
        deps,
        ctx,
        pool,
        async (b, pctx) =>
          aliasStream(
            ctx,
            b,
            req.model,
            await b.provider.chatStream(b.provider.chatStreamRaw ? upstreamReq : usageReq, pctx),
          ),
        cancel,
      ),
    );
    return {
      kind: 'stream',
      chunks: trackUsage(ctx, chunks, wantsUsage, () => countMessages(shaped.messages)),
    };
  }
  if (bytesOk(opts, plan, ctx, pool, false)) {
    const buf = await dispatchUnary(deps, ctx, pool, (b, pctx) =>
      (b.provider.chatBytes as NonNullable<typeof b.provider.chatBytes>)(shaped, pctx),
    );
    return unaryBytes(ctx, req.model, buf, () => countMessages(shaped.messages), chatText);
  }
  const res = await serveUnary(plan, ctx, (cancel) =>
    dispatchUnary(
      deps,
      ctx,
      pool,
      async (b, pctx) => aliasUnary(ctx, b, req.model, await b.provider.chat(shaped, pctx)),
      cancel,
    ),
  );
  const text = (): string => chatText(res);
  const countShaped = (): number => countMessages(shaped.messages);
  if (!takeUsage(ctx, res.usage, { prompt: countShaped, completion: () => countText(text()) })) {
    ctx.promptTokensEstimate ??= countShaped();
    ctx.outputChars = text();
  }
  if (ctx.captureOutput) ctx.outputText = res.choices.map((c) => c.message.content ?? '').join('');
  return { kind: 'json', body: res };
}

export async function runCompletion(
  deps: PipelineDeps,
  ctx: RequestContext,
  tenant: TenantRuntime,
  body: unknown,
  opts: StreamOptions = {},
): Promise<Outcome<CompletionResponse, CompletionChunk>> {
  let req = validateCompletionRequest(body);
  const pool = stageSync(ctx, 'route', () =>
    resolveModel(ctx, tenant, req.model, typeof req.user === 'string' ? req.user : undefined),
  );
  const tokenIds = isTokenPrompt(req.prompt);
  if (pool.strategy === 'prefix_affinity') ctx.affinityKey = promptAffinityKey(req.prompt);
  if (tenant.redactPiiUpstream && deps.redactor) {
    if (tokenIds)
      throw new PorticoError(
        'invalid_request',
        'Your prompts are PII-redacted before they leave the gateway, and a prompt of token ids cannot be redacted. Send the prompt as text.',
        { param: 'prompt' },
      );
    req = { ...req, prompt: redactPrompt(deps.redactor, req.prompt as string | string[]) };
  }
  applyTokenPolicy(tenant, req);
  capOutput(req, await admitTokens(deps, ctx, tenant, () => countPrompt(req.prompt), req.max_tokens ?? 16));
  const plan = planCache(deps.cache, ctx, tenant, 'completions', req);
  if (req.stream === true) {
    ctx.stream = true;
    const wantsUsage = req.stream_options?.include_usage === true;
    const alias = req.model;
    if (opts.passThrough && !plan && canPassThrough(ctx, pool, true)) {
      const r = req;
      return passThrough(
        ctx,
        alias,
        wantsUsage,
        await dispatchRawStream(deps, ctx, pool, (b, pctx) =>
          (b.provider.completionStreamRaw as NonNullable<typeof b.provider.completionStreamRaw>)(r, pctx),
        ),
        () => countPrompt(r.prompt),
      );
    }
    const usageReq = withStreamUsage(req);
    const upstreamReq = plan ? usageReq : req;
    const chunks = await serveStream(plan, ctx, (cancel) =>
      dispatchStream(
        deps,
        ctx,
        pool,
        async (b, pctx) =>
          aliasStream(
            ctx,
            b,
            alias,
            await b.provider.completionStream(b.provider.completionStreamRaw ? upstreamReq : usageReq, pctx),
          ),
        cancel,
      ),
    );
    return { kind: 'stream', chunks: trackUsage(ctx, chunks, wantsUsage, () => countPrompt(req.prompt)) };
  }
  if (bytesOk(opts, plan, ctx, pool, true)) {
    const r = req;
    const buf = await dispatchUnary(deps, ctx, pool, (b, pctx) =>
      (b.provider.completionBytes as NonNullable<typeof b.provider.completionBytes>)(r, pctx),
    );
    return unaryBytes(ctx, req.model, buf, () => countPrompt(r.prompt), completionText);
  }
  const res = await serveUnary(plan, ctx, (cancel) =>
    dispatchUnary(
      deps,
      ctx,
      pool,
      async (b, pctx) => aliasUnary(ctx, b, req.model, await b.provider.completion(req, pctx)),
      cancel,
    ),
  );
  const text = (): string => res.choices.map((c) => c.text).join('');
  const prompt = req.prompt;
  if (
    !takeUsage(ctx, res.usage, { prompt: () => countPrompt(prompt), completion: () => countText(text()) })
  ) {
    ctx.promptTokensEstimate ??= countPrompt(prompt);
    ctx.outputChars = text();
  }
  if (ctx.captureOutput) ctx.outputText = text();
  return { kind: 'json', body: res };
}

/**
 * Usage of a route without output (embeddings, rerank): the upstream's (`usage`, or Cohere's
 * `meta`: inputUsageOf), else the input as Portico counts it (the record marked estimated).
 */
function takeInputUsage(ctx: RequestContext, answer: unknown, count: () => number): void {
  if (takeUsage(ctx, inputUsageOf(answer), { prompt: count })) return;
  ctx.promptTokensEstimate ??= count();
  ctx.outputChars = '';
}

export async function runEmbeddings(
  deps: PipelineDeps,
  ctx: RequestContext,
  tenant: TenantRuntime,
  body: unknown,
): Promise<EmbeddingResponse> {
  const req: EmbeddingRequest = validateEmbeddingRequest(body);
  const pool = stageSync(ctx, 'route', () => resolveModel(ctx, tenant, req.model, req.user));
  await admitTokens(deps, ctx, tenant, () => countEmbeddingInput(req.input), 0);
  const call = (part: EmbeddingRequest, cancel?: Cancel): Promise<EmbeddingResponse> =>
    dispatchUnary(
      deps,
      ctx,
      pool,
      async (b, pctx) => aliasUnary(ctx, b, req.model, await b.provider.embeddings(part, pctx)),
      cancel,
    );
  const size = ctx.snapshot.config.models[pool.alias]?.embeddings_batch_size ?? 256;
  const parts = batchesOf(req.input, size);
  if (!parts) {
    const res = await call(req);
    takeInputUsage(ctx, res, () => countEmbeddingInput(req.input));
    return res;
  }
  return embedInBatches(ctx, req, parts, size, call);
}

/** Upstream batches in flight at once for one large embeddings request. */
const EMBED_PARALLEL = 4;

type EmbeddingBatch = string[] | number[][];

/** The input in batches of `size`; undefined when it goes upstream in one call. */
function batchesOf(input: EmbeddingRequest['input'], size: number): EmbeddingBatch[] | undefined {
  const many = Array.isArray(input) && (typeof input[0] === 'string' || Array.isArray(input[0]));
  if (!many || input.length <= size) return undefined;
  const parts: EmbeddingBatch[] = [];
  for (let i = 0; i < input.length; i += size) parts.push(input.slice(i, i + size) as EmbeddingBatch);
  return parts;
}

/**
 * Embeddings inputs above the model's `embeddings_batch_size` go upstream in batches (up to
 * EMBED_PARALLEL at once); the answer is reassembled in input order with summed usage.
 *
 * When a batch fails, no further batch starts and the ones in flight are cancelled (their
 * upstream calls aborted, not counted against the backend); the error waits for them, so no
 * upstream call outlives the client's answer. The batches that completed were done upstream:
 * they are billed (their usage summed, the record marked partial) with the error as the answer.
 */
async function embedInBatches(
  ctx: RequestContext,
  req: EmbeddingRequest,
  parts: EmbeddingBatch[],
  size: number,
  call: (part: EmbeddingRequest, cancel: Cancel) => Promise<EmbeddingResponse>,
): Promise<EmbeddingResponse> {
  const results = new Array<EmbeddingResponse | undefined>(parts.length);
  const cancel = new Cancel();
  const unlink = ctx.controller.onAbort(() => cancel.abort(ctx.controller.reason));
  if (ctx.controller.aborted) cancel.abort(ctx.controller.reason);
  let failed: { err: unknown } | undefined;
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < parts.length && !failed) {
      const i = next++;
      try {
        results[i] = await call({ ...req, input: parts[i] as EmbeddingBatch }, cancel);
      } catch (err) {
        // The first failure is the answer; the others are the cancellation it caused.
        if (!failed) {
          failed = { err };
          cancel.abort();
        }
        return;
      }
    }
  };
  try {
    await Promise.all(Array.from({ length: Math.min(EMBED_PARALLEL, parts.length) }, worker));
  } finally {
    unlink();
  }
  const data: EmbeddingResponse['data'] = [];
  let prompt = 0;
  let total = 0;
  let estimated = false;
  let done = 0;
  results.forEach((r, i) => {
    if (!r) return;
    done++;
    if (Array.isArray(r.data)) for (const d of r.data) data.push({ ...d, index: i * size + d.index });
    const part = parts[i];
    const count = (): number => countEmbeddingInput(part);
    const n = normalizeUsage(inputUsageOf(r), { prompt: count });
    const inTokens = n ? n.usage.prompt_tokens : count();
    prompt += inTokens;
    total += n ? n.usage.total_tokens : inTokens;
    if (!n || n.estimated) estimated = true;
  });
  if (done > 0) {
    ctx.usage = { prompt_tokens: prompt, completion_tokens: 0, total_tokens: total };
    ctx.usageEstimated = estimated ? true : undefined;
  }
  if (failed) {
    if (done > 0) ctx.partial = true;
    throw failed.err;
  }
  data.sort((a, b) => a.index - b.index);
  return {
    object: 'list',
    data,
    // Each batch's answer carries the alias already (aliasUnary).
    model: results[0]?.model ?? req.model,
    usage: { prompt_tokens: prompt, total_tokens: total },
  };
}

export async function runRerank(
  deps: PipelineDeps,
  ctx: RequestContext,
  tenant: TenantRuntime,
  body: unknown,
): Promise<RerankResponse> {
  const req: RerankRequest = validateRerankRequest(body);
  const pool = stageSync(ctx, 'route', () => resolveModel(ctx, tenant, req.model));
  const countInput = (): number => countText(req.query) + req.documents.reduce((n, d) => n + countText(d), 0);
  await admitTokens(deps, ctx, tenant, countInput, 0);
  let res: RerankResponse;
  try {
    res = await dispatchUnary(deps, ctx, pool, async (b, pctx) =>
      aliasUnary(ctx, b, req.model, await b.provider.rerank(req, pctx)),
    );
  } catch (err) {
    if (isPorticoError(err) && err.code === 'unsupported_operation')
      throw cannotRerank(ctx, tenant, req.model, err);
    throw err;
  }
  takeInputUsage(ctx, res, countInput);
  return res;
}

/**
 * The 501 of a rerank on a model whose backend cannot: what the caller can do instead. Names only
 * models the tenant may use, and this model's fallbacks (which /info shows it).
 */
function cannotRerank(
  ctx: RequestContext,
  tenant: TenantRuntime,
  alias: string,
  err: PorticoError,
): PorticoError {
  const can = (m: string): boolean =>
    ctx.snapshot.pools.get(m)?.backends.some((b) => b.provider.canRerank !== false) === true;
  const mine = tenantModels(ctx, tenant).filter((m) => m !== alias && can(m));
  const fallbacks = (ctx.snapshot.config.models[alias]?.fallbacks ?? []).filter(can);
  const quoted = (ms: string[]): string => ms.map((m) => `"${m}"`).join(', ');
  let hint: string;
  if (mine.length > 0) hint = `Send it to a model of yours that can: ${mine.join(', ')}.`;
  else if (fallbacks.length > 0)
    hint = `Its fallback ${quoted(fallbacks)} can, but fallbacks are not tried for an operation a backend lacks: ask your Portico operator to allow ${quoted(fallbacks)} for your tenant, or to give "${alias}" a backend that reranks.`;
  else
    hint =
      'None of your models can: ask your Portico operator for one whose backend reranks (an OpenAI-compatible server with a /rerank endpoint, such as vLLM, llama.cpp --reranking or Together; or the simulator).';
  return new PorticoError('unsupported_operation', `${err.message} Model "${alias}" cannot rerank. ${hint}`);
}

/**
 * Usage for accounting: the upstream's, or Portico's count when the upstream gave none. A stream
 * cut short after the upstream reported counts (ctx.reportedUsage: Anthropic's message_start and
 * message_delta) is billed its input exactly and, as output, the larger of the upstream's last
 * count and the tokenizer's count of what reached the client: the upstream's count lags the text
 * (Anthropic sends output_tokens in message_delta, usually once, at the end), and a generation
 * the client did not see is still one the upstream bills. Marked `estimated` only when the
 * estimate is what was billed.
 */
function accountedUsage(
  ctx: RequestContext,
  status: number,
): { prompt: number; completion: number; estimated: boolean } | undefined {
  if (ctx.usage)
    return {
      prompt: ctx.usage.prompt_tokens,
      completion: ctx.usage.completion_tokens,
      estimated: ctx.usageEstimated === true,
    };
  if (status >= 400 && ctx.outputChars === undefined) return undefined;
  const reported = ctx.reportedUsage;
  if (reported) {
    const delivered = ctx.outputChars ? countText(ctx.outputChars) : 0;
    return delivered > reported.completion_tokens
      ? { prompt: reported.prompt_tokens, completion: delivered, estimated: true }
      : { prompt: reported.prompt_tokens, completion: reported.completion_tokens, estimated: false };
  }
  if (ctx.promptTokensEstimate === undefined && ctx.outputChars === undefined) return undefined;
  return {
    prompt: ctx.promptTokensEstimate ?? 0,
    completion: countText(ctx.outputChars ?? ''),
    estimated: true,
  };
}

/** Where a count that was no number was met (route and backend), each logged once. */
const nonFiniteSeen = new Set<string>();

/**
 * The backstop: accounting never takes a count that is not a finite number >= 0 — NaN in a quota
 * stops it from enforcing, in a tokens/min window it refuses every later request. Every intake
 * normalises the upstream's usage (takeUsage); a count that still is not one (a path that does
 * not) is replaced by the estimate, and where it came from is logged once.
 */
function finiteUsage(
  deps: PipelineDeps,
  ctx: RequestContext,
  u: { prompt: number; completion: number; estimated: boolean } | undefined,
): { prompt: number; completion: number; estimated: boolean } | undefined {
  if (!u) return u;
  const prompt = tokenCount(u.prompt);
  const completion = tokenCount(u.completion);
  if (prompt !== undefined && completion !== undefined)
    return prompt === u.prompt && completion === u.completion ? u : { ...u, prompt, completion };
  const where = `${ctx.route} ${ctx.backend ?? '-'}`;
  if (!nonFiniteSeen.has(where) && nonFiniteSeen.size < 1000) {
    nonFiniteSeen.add(where);
    deps.logger.warn(
      {
        requestId: ctx.requestId,
        route: ctx.route,
        backend: ctx.backend,
        prompt: String(u.prompt),
        completion: String(u.completion),
      },
      'usage count is not a finite number >= 0; billed the estimate instead (logged once per route and backend)',
    );
  }
  return {
    prompt: prompt ?? tokenCount(ctx.promptTokensEstimate) ?? 0,
    completion: completion ?? countText(ctx.outputChars ?? ''),
    estimated: true,
  };
}

/**
 * The usage a finished answer is billed (accountedUsage), in the canonical shape: what the
 * Responses bridge and /v1/messages tell the client when the upstream reported none, so the
 * client sees the counts the ledger records (the prompt estimate and the count of the delivered
 * text, reasoning and tool-call arguments).
 */
export function billedUsage(ctx: RequestContext): Usage | undefined {
  const u = accountedUsage(ctx, 200);
  return (
    u && { prompt_tokens: u.prompt, completion_tokens: u.completion, total_tokens: u.prompt + u.completion }
  );
}

/**
 * The usage a Portico-shaped answer (`/ask`, team routes) reports: the upstream's as accounting
 * read it (normalised: a count it left out is the one billed), else the count billed for an
 * answer without usage — never `null` for an answer the ledger billed.
 */
export function answerUsage(ctx: RequestContext): Usage | null {
  return ctx.usage ?? billedUsage(ctx) ?? null;
}

/**
 * Accounting, once per request, at the end of its response but before its last byte is handed to
 * the socket (unary: the onSend hook; streams: before the closing event): counts the usage, prices
 * it and writes the ledger record, which the ledger journal makes durable at once (or, with
 * `deferJournal`, in the turn's one write, which afterJournal() waits for). So a crash
 * right after cannot lose the record of a response the client received; the record carries the
 * quota commit finishRequest will make, so a replay can make it too.
 */
export function recordUsage(
  deps: PipelineDeps,
  ctx: RequestContext,
  status: number,
  deferJournal = false,
): void {
  if (ctx.accounting || ctx.finished) return;
  const latencyMs = performance.now() - ctx.startedAt;
  const usage = ctx.model ? finiteUsage(deps, ctx, accountedUsage(ctx, status)) : undefined;
  const countsAgainstQuota = !ctx.cacheHit || ctx.snapshot.config.admission.count_cache_hits_against_quota;
  const quotaActual = usage && countsAgainstQuota ? usage.prompt + usage.completion : usage ? 0 : undefined;
  const accounting: NonNullable<RequestContext['accounting']> = { usage, quotaActual, quotaJournaled: false };
  ctx.accounting = accounting;
  const tenant = ctx.tenant?.id ?? ANONYMOUS_TENANT;
  const model = ctx.model ?? UNKNOWN_MODEL;
  if (usage) {
    ctx.accountedTokens = { input: usage.prompt, output: usage.completion, estimated: usage.estimated };
    // Priced as the model that answered: a fallback model at its own prices, an A/B variant at
    // its own (else the split alias's); the series and the record keep the alias asked for.
    const models = ctx.snapshot.config.models;
    const pricing =
      ctx.fallbackModel !== undefined
        ? models[ctx.fallbackModel]?.pricing
        : ((ctx.variant !== undefined ? models[ctx.variant]?.pricing : undefined) ?? models[model]?.pricing);
    // The cache part of the prompt: the upstream's usage, or its counts before a cut.
    const upstream = ctx.usage ?? ctx.reportedUsage;
    ctx.costUsd = ctx.cacheHit
      ? 0
      : costUsd(pricing, usage.prompt, usage.completion, upstream ? cacheTokensOf(upstream) : undefined);
  }
  // One ledger record per admitted request: it reached a backend (or the cache answered).
  if (
    deps.tenancy &&
    ctx.tenant &&
    ctx.model &&
    (ctx.backend !== undefined || ctx.cacheHit !== undefined) &&
    ACCOUNTED.has(ctx.route)
  ) {
    const reservation = ctx.admission?.reservation;
    const quota =
      reservation && quotaActual !== undefined ? { res: reservation, tokens: quotaActual } : undefined;
    accounting.quotaJournaled = quota !== undefined;
    const ok = deps.tenancy.state.ledgerWriter.write(
      {
        id: ctx.requestId,
        time: Date.now(),
        tenant,
        key_id: ctx.keyId ?? null,
        model,
        backend: ctx.backend ?? null,
        tokens_in: usage?.prompt ?? 0,
        tokens_out: usage?.completion ?? 0,
        estimated: usage?.estimated ?? false,
        cost_usd: ctx.costUsd ?? 0,
        latency_ms: Math.round(latencyMs * 1000) / 1000,
        status,
        cache_hit: ctx.cacheHit !== undefined,
        request_id: ctx.requestId,
        // Always present (one object shape); undefined is left out of the JSON line.
        partial: ctx.partial ? true : undefined,
      },
      quota,
      deferJournal,
    );
    if (!ok) deps.logger.warn({ requestId: ctx.requestId }, 'usage ledger buffer above its high-water mark');
  }
}

/**
 * `cb` runs once the ledger records written so far are in the crash journal: a caller that passed
 * `deferJournal` to recordUsage sends the response's bytes from here, so the guarantee holds
 * (journaled before the client has its answer) while a busy turn's records share one write.
 */
export function afterJournal(deps: PipelineDeps, cb: () => void): void {
  if (deps.tenancy) deps.tenancy.state.ledgerWriter.afterJournal(cb);
  else cb();
}

/** Last stage, exactly once per request: metrics, accounting (quota settle, ledger), then the finish hooks. */
/** Confirm the journaled record's quota commit once it is settled (closes over the id, not the context). */
function confirmQuota(writer: LedgerWriter, settled: Promise<boolean>, requestId: string): void {
  void settled.then(
    (ok) => writer.quotaSettled(requestId, ok),
    () => writer.quotaSettled(requestId, false),
  );
}

export function finishRequest(deps: PipelineDeps, ctx: RequestContext, status: number): void {
  if (ctx.finished) return;
  recordUsage(deps, ctx, status);
  ctx.finished = true;
  const tenant = ctx.tenant?.id ?? ANONYMOUS_TENANT;
  const model = ctx.model ?? UNKNOWN_MODEL;
  const latencyMs = performance.now() - ctx.startedAt;
  const m = deps.metrics;
  clearTimeout(ctx.deadlineTimer);
  if (ctx.variant && ctx.model) m.variantRequests.labels(ctx.model, ctx.variant).inc();
  m.recordRequest({
    tenant,
    model,
    route: ctx.route,
    endpoint: ctx.endpoint,
    method: ctx.method,
    status,
    seconds: latencyMs / 1000,
  });
  if (ctx.tenant) m.child.inFlight(tenant).dec();
  const usage = ctx.accounting?.usage;
  if (usage) {
    m.child.tokens(tenant, model, 'input').inc(usage.prompt);
    m.child.tokens(tenant, model, 'output').inc(usage.completion);
    if (ctx.costUsd !== undefined && ctx.costUsd > 0) m.child.cost(tenant, model).inc(ctx.costUsd);
  }
  if (ctx.admission) {
    const journaled = ctx.accounting?.quotaJournaled === true;
    const settled = releaseHolds(deps, ctx, ctx.accounting?.quotaActual);
    // The journal keeps the record until its quota commit is confirmed (a replay redoes it otherwise).
    if (journaled && deps.tenancy) confirmQuota(deps.tenancy.state.ledgerWriter, settled, ctx.requestId);
  }
  for (const hook of deps.onFinish) {
    try {
      hook(ctx, status);
    } catch (err) {
      deps.logger.error({ err, requestId: ctx.requestId }, 'finish hook failed');
    }
  }
  // Last: its record is journaled (recordUsage above) and its hooks have run.
  if (ctx.tenant) deps.openRequests?.done();
  if (deps.logger.isLevelEnabled('debug'))
    deps.logger.debug(
      {
        requestId: ctx.requestId,
        correlationId: ctx.correlationId,
        tenant,
        model,
        route: ctx.route,
        backend: ctx.backend,
        status,
        latencyMs: Math.round(latencyMs * 10) / 10,
        tokensIn: usage?.prompt,
        tokensOut: usage?.completion,
        cache: ctx.cacheHit,
      },
      'request finished',
    );
  if (ctx.trace)
    endRequestTrace(ctx, status, {
      'portico.tenant': tenant,
      'portico.model': model,
      'portico.route': ctx.route,
      ...(ctx.backend ? { 'portico.backend': ctx.backend } : {}),
      ...(ctx.cacheHit ? { 'portico.cache': ctx.cacheHit } : {}),
      ...(usage
        ? { 'gen_ai.usage.input_tokens': usage.prompt, 'gen_ai.usage.output_tokens': usage.completion }
        : {}),
    });
}
