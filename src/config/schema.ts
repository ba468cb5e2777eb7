/**
 * The ONE config schema. Types are derived from it (z.infer); unknown keys are errors
 * (strictObject everywhere); backends are discriminated by `provider`.
 * docs/config.md documents every field; a test checks the two agree.
 */
import { z } from 'zod';
import { crossCheck } from './cross-check.js';
import { isStorableText } from '../lib/storable-text.js';

const port = z.number().int().min(0).max(65535);
const nonEmpty = z.string().min(1);
const idString = z
  .string()
  .regex(/^[a-z0-9][a-z0-9._-]{0,62}$/, 'use 1-63 lower-case letters, digits, ".", "_" or "-"');
/** Text a tenant record keeps in the state stores (no NUL, no unpaired surrogate: Postgres refuses them). */
const STORABLE =
  'must be text without a NUL character or an unpaired surrogate: the tenant store could not hold it';
const storableText = z.string().refine(isStorableText, STORABLE);

export const TlsSchema = z.strictObject({
  cert_file: nonEmpty.describe('PEM certificate chain (path; relative to the working directory)'),
  key_file: nonEmpty.describe('PEM private key (path; relative to the working directory)'),
  min_version: z.enum(['TLSv1.2', 'TLSv1.3']).default('TLSv1.2'),
});

export const UpstreamPoolSchema = z.strictObject({
  connections: z.number().int().min(1).max(4096).default(128).describe('max sockets per backend origin'),
  keep_alive_timeout_ms: z
    .number()
    .int()
    .min(100)
    .default(30_000)
    .describe(
      'idle upstream sockets (and sockets that never carried a request) are closed after this long (ms)',
    ),
  pipelining: z.number().int().min(1).max(16).default(1),
});

export const CorsSchema = z.strictObject({
  origins: z
    .array(z.string().min(1))
    .default([])
    .describe(
      'origins browsers may call the API from: exact origins ("https://app.example.com") or "*" for any; empty = CORS off',
    ),
  max_age_s: z
    .number()
    .int()
    .min(0)
    .max(86_400)
    .default(600)
    .describe('how long a browser may cache a preflight answer (Access-Control-Max-Age)'),
  credentials: z
    .boolean()
    .default(false)
    .describe('send Access-Control-Allow-Credentials (cookies; not needed for Bearer keys)'),
});

export const ServerSchema = z.strictObject({
  host: z.string().default('127.0.0.1'),
  port: port.default(8080),
  body_limit_bytes: z
    .number()
    .int()
    .min(1024)
    .default(4 * 1024 * 1024),
  tls: TlsSchema.optional(),
  compression: z
    .strictObject({
      enabled: z.boolean().default(true),
      threshold_bytes: z.number().int().min(0).default(1024),
    })
    .default({ enabled: true, threshold_bytes: 1024 }),
  upstream_pool: UpstreamPoolSchema.default({
    connections: 128,
    keep_alive_timeout_ms: 30_000,
    pipelining: 1,
  }),
  request_timeout_ms: z
    .number()
    .int()
    .min(1)
    .default(90 * 60 * 1000)
    .describe('max total time for one request (default 90 min)'),
  trust_proxy: z.boolean().default(false).describe('take the client IP from X-Forwarded-For'),
  cors: CorsSchema.default({ origins: [], max_age_s: 600, credentials: false }).describe(
    'Cross-origin requests from browser apps (off unless origins are listed)',
  ),
  drain_timeout_ms: z
    .number()
    .int()
    .min(0)
    .default(30_000)
    .describe(
      "on SIGTERM: how long requests and streams in flight may take to finish (the drain ends as soon as they have); keep the orchestrator's kill grace period above it + 15 s (the Helm chart derives it)",
    ),
  stream_idle_timeout_ms: z
    .number()
    .int()
    .min(1)
    .default(180_000)
    .describe('max silence between upstream stream chunks'),
  headers_timeout_ms: z
    .number()
    .int()
    .min(100)
    .default(10_000)
    .describe(
      'a client must send the request line and headers within this (408 and close; restart to change)',
    ),
  body_timeout_ms: z
    .number()
    .int()
    .min(100)
    .default(30_000)
    .describe(
      'a client must send the whole request, body included, within this (408 and close; restart to change)',
    ),
  max_connections: z
    .number()
    .int()
    .min(1)
    .default(8192)
    .describe('open client connections per replica; more are answered 503 too_many_connections and closed'),
  max_connections_per_ip: z
    .number()
    .int()
    .min(0)
    .default(1024)
    .describe(
      'open connections per client IP (0 = no cap; not applied with trust_proxy, where peers are proxies)',
    ),
});

export const TeamRouteSchema = z.strictObject({
  model: idString.describe('model alias (or split alias) this route serves'),
  timeout_ms: z.number().int().min(1).default(60_000),
  path: z
    .string()
    .regex(/^\/[a-z0-9/_-]+$/, 'an absolute path like /v1/text2sql')
    .optional()
    .describe(
      'also serve this route at a dedicated path: one no other route has, and not one Portico serves itself (a built-in route, or its form without /v1 or with a trailing slash)',
    ),
  description: z.string().optional(),
});

const WHITESPACE_NAMES: Record<string, string> = {
  '\n': 'a newline',
  '\r': 'a carriage return',
  '\t': 'a tab',
  ' ': 'a space',
};

/**
 * Why no `Authorization: Bearer <token>` header can carry this admin token (undefined: one can):
 * the gateway reads the token as one run of non-space characters, and a header carries ASCII.
 * The token itself is never shown.
 */
export function adminTokenProblem(token: string): string | undefined {
  const cant =
    'no "Authorization: Bearer <token>" header can carry it, so the admin API and the console would refuse every request';
  const edge = /^\s|\s$/.exec(token);
  if (edge) {
    const at = edge.index === 0 ? 'starts' : 'ends';
    const ch = edge[0];
    const what =
      WHITESPACE_NAMES[ch] ??
      `whitespace (U+${ch.charCodeAt(0).toString(16).toUpperCase().padStart(4, '0')})`;
    return `the admin token ${at} with ${what}: ${cant}. A secret file read through \${PORTICO_ADMIN_TOKEN} often ends with a newline: strip it (write the file with printf '%s', or set the variable from "$(tr -d '\\n' < file)")`;
  }
  // eslint-disable-next-line no-control-regex
  const bad = /[\s\u0000-\u001f\u007f]|[^\u0000-\u007f]/.exec(token);
  if (!bad) return undefined;
  const ch = bad[0];
  const code = `U+${(ch.codePointAt(0) ?? 0).toString(16).toUpperCase().padStart(4, '0')}`;
  const what = /\s/.test(ch)
    ? `contains ${WHITESPACE_NAMES[ch] ?? `whitespace (${code})`}`
    : ch < ' ' || ch === '\u007f'
      ? `contains a control character (${code})`
      : `contains a non-ASCII character (${code})`;
  return `the admin token ${what}: ${cant}. Use printable ASCII without spaces (e.g. openssl rand -hex 32)`;
}

export const AdminSchema = z.strictObject({
  token: z
    .string()
    .default('')
    .superRefine((token, ctx) => {
      const problem = adminTokenProblem(token);
      if (problem) ctx.addIssue({ code: 'custom', message: problem });
    })
    .describe(
      'admin bearer token: printable ASCII without spaces (leading/trailing whitespace, e.g. the newline a secret file ends with, is refused, not trimmed); empty = generate one at start-up and print it. A reload applies a new token at once, but cannot remove it (restart for that)',
    ),
  console: z
    .boolean()
    .default(true)
    .describe('serve the web console at /console/ (its data still needs the admin token); read at start'),
  request_log_size: z
    .number()
    .int()
    .min(10)
    .max(100_000)
    .default(1000)
    .describe('finished requests kept in memory for GET /admin/requests and the console; read at start'),
});

/**
 * Bounds of the rate limits. Past them a limit means nothing useful (a bucket that refills once in
 * centuries, a budget no gateway reaches) and the limiters' arithmetic leaves what Redis takes.
 */
export const RATE_LIMIT_BOUNDS = {
  requests_per_second: { min: 1e-6, max: 1e6 },
  burst: 1e9,
  tokens_per_minute: 1e12,
} as const;

export const RateLimitsSchema = z.strictObject({
  requests_per_second: z
    .number()
    .min(
      RATE_LIMIT_BOUNDS.requests_per_second.min,
      'give at least 0.000001 requests/s (one request per 11.6 days)',
    )
    .max(RATE_LIMIT_BOUNDS.requests_per_second.max, 'give at most 1000000 requests/s (or no limit)')
    .optional()
    .describe('token bucket refill rate'),
  burst: z
    .number()
    .int()
    .min(1)
    .max(RATE_LIMIT_BOUNDS.burst, 'give a bucket of at most 1000000000 requests')
    .optional()
    .describe('bucket size; default = max(1, requests_per_second)'),
  tokens_per_minute: z
    .number()
    .int()
    .min(1)
    .max(RATE_LIMIT_BOUNDS.tokens_per_minute, 'give at most 1000000000000 tokens/min (or no limit)')
    .optional()
    .describe('sliding one-minute budget of prompt + completion tokens'),
  max_in_flight: z
    .number()
    .int()
    .min(1)
    .optional()
    .describe('concurrent requests; more wait in the priority queue'),
});

export const QuotaSchema = z.strictObject({
  daily_tokens: z.number().int().min(1).optional(),
  monthly_tokens: z.number().int().min(1).optional(),
  daily_requests: z.number().int().min(1).optional(),
  monthly_requests: z.number().int().min(1).optional(),
});

/**
 * What a tenant plans to spend: the cost alerts compare its spend over a rolling 24 hours with
 * this (portico_tenant_daily_budget_usd). Alerting only: a quota is what refuses requests.
 */
export const BudgetSchema = z.strictObject({
  daily_usd: z
    .number()
    .positive()
    .max(1e9)
    .describe('USD per day; PorticoDailyBudgetNearlyExhausted at 80%, PorticoDailyBudgetExceeded above it'),
});

export const PRIORITY_CLASSES = ['critical', 'high', 'normal', 'low'] as const;
export const PrioritySchema = z.enum(PRIORITY_CLASSES);
export const PriorityClassesForDocs = PRIORITY_CLASSES;

/** A config key's id (config/key-ids.ts): what usage records, quota scopes and the admin API name it by. */
const configKeyIdField = z
  .string()
  .min(1, 'give the key a non-empty id, or leave id out for the derived one')
  .refine(
    isStorableText,
    'must be text without a NUL character or an unpaired surrogate: the usage ledger and the quota store could not hold it',
  )
  .optional()
  .describe(
    'names the key in usage records, per-key limits and quotas, the audit log and the admin API; default {tenant}-cfg- + the first 12 hex characters of the key sha256 (stable when keys are added, removed or reordered)',
  );

export const ApiKeySchema = z.union([
  z.strictObject({
    sha256: z.string().regex(/^[0-9a-f]{64}$/, 'must be 64 lower-case hex characters (sha256 of the key)'),
    id: configKeyIdField,
    label: z.string().optional(),
    limits: RateLimitsSchema.optional(),
    quota: QuotaSchema.optional(),
  }),
  z.strictObject({
    value: nonEmpty.describe('the key itself, normally from ${ENV}; hashed at load, never kept'),
    id: configKeyIdField,
    label: z.string().optional(),
    limits: RateLimitsSchema.optional(),
    quota: QuotaSchema.optional(),
  }),
]);

export const CachePolicySchema = z.strictObject({
  enabled: z.boolean().optional().describe('false turns the response cache off for this tenant/model'),
  deterministic_only: z
    .boolean()
    .optional()
    .describe('cache only requests with temperature 0 or a seed (default from cache.deterministic_only)'),
});

export const TenantSchema = z
  .strictObject({
    id: idString,
    display_name: storableText.min(1).optional(),
    company: storableText.optional(),
    industry: storableText.optional(),
    system_prompt: storableText.optional(),
    system_prompt_file: nonEmpty.optional().describe('path, relative to the config file'),
    prompt_policy: z
      .enum(['prepend', 'replace', 'none'])
      .default('prepend')
      .describe(
        "prepend: tenant prompt goes before the caller's system messages; replace: caller system messages are dropped; none: not injected",
      ),
    allowed_models: z.array(nonEmpty).min(1).default(['*']).describe('model aliases, or "*" for all'),
    default_model: nonEmpty.optional().describe('model used by /ask; defaults to the first allowed model'),
    max_tokens_cap: z.number().int().min(1).optional().describe('requests asking for more get a 400'),
    default_max_tokens: z.number().int().min(1).optional().describe('used when a request sets no max_tokens'),
    api_keys: z.array(ApiKeySchema).default([]),
    limits: RateLimitsSchema.optional().describe('rate limits for the whole tenant'),
    quota: QuotaSchema.optional().describe('daily/monthly budgets; reset at UTC day/month boundaries'),
    budget: BudgetSchema.optional().describe(
      'planned spend, for the cost alerts only (portico_tenant_daily_budget_usd); quotas enforce',
    ),
    priority: PrioritySchema.default('normal').describe(
      'admission queue class; a request may lower it with x-portico-priority',
    ),
    cache: CachePolicySchema.optional().describe('response cache policy for this tenant'),
    redact_pii_upstream: z
      .boolean()
      .default(false)
      .describe('replace emails, phone numbers, SSNs and card numbers in prompts before they go upstream'),
  })
  .refine((t) => !(t.system_prompt !== undefined && t.system_prompt_file !== undefined), {
    message: 'set system_prompt or system_prompt_file, not both',
    path: ['system_prompt_file'],
  });

const backendCommon = {
  id: idString.optional().describe('defaults to <model alias>-<index>'),
  weight: z.number().min(0).default(1),
  model: z.string().optional().describe('upstream model name; defaults to the alias'),
  timeout_ms: z
    .number()
    .int()
    .min(1)
    .optional()
    .describe("per-attempt timeout: the whole answer, or a stream's first chunk"),
};

/** Simulator fault injection (drills); every fault off when nothing is set. */
export const SimFaultsSchema = z.strictObject({
  error_rate: z.number().min(0).max(1).default(0).describe('share of requests answered with error_status'),
  error_status: z.number().int().min(400).max(599).default(503),
  retry_after_s: z.number().int().min(0).optional().describe('retry-after sent with those errors'),
  spike_rate: z.number().min(0).max(1).default(0).describe('share of requests delayed by spike_ms'),
  spike_ms: z.number().min(0).default(2000),
  hang_rate: z.number().min(0).max(1).default(0).describe('share of requests never answered'),
  slow_headers_ms: z.number().min(0).default(0).describe('delay before any response byte'),
  disconnect_rate: z.number().min(0).max(1).default(0).describe('share of streams cut mid-way'),
  disconnect_after_chunks: z.number().int().min(0).default(3),
  malformed_rate: z
    .number()
    .min(0)
    .max(1)
    .default(0)
    .describe('share of answers with broken JSON (or a broken SSE event on streams)'),
});

export const SimOptionsSchema = z.strictObject({
  mode: z.enum(['lorem', 'echo']).default('lorem').describe('echo answers with the messages it received'),
  ttft_ms: z.number().min(0).default(0),
  itl_ms: z.number().min(0).default(0).describe('inter-token delay when streaming'),
  output_tokens: z.number().int().min(1).default(32).describe('answer length unless max_tokens is lower'),
  jitter: z.number().min(0).max(1).default(0).describe('relative random variation of the delays'),
  embedding_dimensions: z.number().int().min(1).max(8192).default(64),
  seed: z.number().int().default(0),
  faults: SimFaultsSchema.optional().describe(
    'fault injection for drills; changeable at runtime (PATCH /sim/config)',
  ),
  prefix_cache: z
    .strictObject({
      enabled: z.boolean().default(false),
      prefix_chars: z
        .number()
        .int()
        .min(1)
        .default(256)
        .describe('leading prompt characters that form the prefix'),
      ttl_ms: z.number().int().min(1).default(60_000),
      hit_ttft_ms: z.number().min(0).default(0).describe('time to first token when the prefix is cached'),
    })
    .optional()
    .describe("a KV/prefix-cache model: TTFT drops when this instance saw the prompt's prefix recently"),
});

/** OpenAI-protocol presets usable as `provider:` (base URL, auth and request quirks as data). */
export const OPENAI_PRESET_PROVIDERS = ['vllm', 'llamacpp', 'ollama', 'openrouter', 'together'] as const;

export const BackendSchema = z.discriminatedUnion('provider', [
  z.strictObject({
    provider: z.literal('sim'),
    ...backendCommon,
    sim: SimOptionsSchema.optional(),
  }),
  z.strictObject({
    provider: z.literal('openai'),
    ...backendCommon,
    base_url: z
      .url()
      .optional()
      .describe(
        'any OpenAI-compatible server, e.g. http://127.0.0.1:8000/v1; unset = api.openai.com with its quirks',
      ),
    api_key: z.string().optional().describe('sent as Bearer; use ${ENV}'),
    headers: z.record(z.string(), z.string()).optional(),
    force_include_usage: z.boolean().default(true).describe('ask for usage on streams'),
    responses_api: z
      .enum(['bridge', 'native'])
      .default('bridge')
      .describe(
        "POST /v1/responses on this model: bridge = run as chat completions; native = pass through to the backend's own /responses (docs/responses.md)",
      ),
  }),
  z.strictObject({
    provider: z
      .enum(OPENAI_PRESET_PROVIDERS)
      .describe('an OpenAI-compatible server with a preset: vllm, llamacpp, ollama, openrouter, together'),
    ...backendCommon,
    base_url: z.url().optional().describe("defaults to the preset's (local servers: their default port)"),
    api_key: z.string().optional().describe('sent as Bearer; required by openrouter and together'),
    headers: z.record(z.string(), z.string()).optional(),
    force_include_usage: z.boolean().optional().describe('default from the preset (true for all)'),
    responses_api: z
      .enum(['bridge', 'native'])
      .default('bridge')
      .describe('native: the server speaks the Responses API itself (docs/responses.md)'),
  }),
  z.strictObject({
    provider: z.literal('engine'),
    ...backendCommon,
    model_file: nonEmpty.describe('the built-in engine, in-process: a GGUF path or hf:owner/repo:QUANT'),
    threads: z.number().int().min(1).max(256).optional().describe('CPU threads; default min(4, cores)'),
    sequences: z.number().int().min(1).max(64).default(4).describe('requests decoded together'),
    context_size: z.number().int().min(128).default(2048).describe('context tokens per sequence'),
    queue_timeout_ms: z.number().int().min(1).default(30_000).describe('wait for a free sequence'),
    gpu: z.enum(['auto', 'off']).default('auto').describe('auto: use an installed GPU build'),
  }),
  z.strictObject({
    provider: z.literal('anthropic'),
    ...backendCommon,
    base_url: z.url().optional().describe('default https://api.anthropic.com'),
    api_key: z
      .string({
        error: 'provider anthropic needs an api_key: add api_key: ${ANTHROPIC_API_KEY} and set that variable',
      })
      .min(1, 'provider anthropic needs a non-empty api_key (use ${ANTHROPIC_API_KEY})')
      .describe('sent as x-api-key; use ${ANTHROPIC_API_KEY}'),
    headers: z.record(z.string(), z.string()).optional().describe('e.g. anthropic-beta'),
    default_max_tokens: z
      .number()
      .int()
      .min(1)
      .default(4096)
      .describe('sent when a request gives no max_tokens (Anthropic requires one)'),
  }),
]);

export const PricingSchema = z.strictObject({
  input_per_million: z.number().min(0).default(0).describe('USD per 1M prompt tokens'),
  output_per_million: z.number().min(0).default(0).describe('USD per 1M completion tokens'),
  cache_read_per_million: z
    .number()
    .min(0)
    .optional()
    .describe("USD per 1M prompt tokens read from the provider's prompt cache (default: the input price)"),
  cache_write_per_million: z
    .number()
    .min(0)
    .optional()
    .describe("USD per 1M prompt tokens written to the provider's prompt cache (default: the input price)"),
});

export const RetrySchema = z.strictObject({
  attempts: z.number().int().min(1).max(10).default(3).describe('total attempts, the first included'),
  backoff_ms: z.number().int().min(0).default(100).describe('first backoff; doubles each retry, full jitter'),
  max_backoff_ms: z.number().int().min(0).default(2000),
  max_retry_after_ms: z
    .number()
    .int()
    .min(0)
    .default(5000)
    .describe(
      'the longest upstream retry-after waited for when no other backend can take the retry (a longer one goes to the client)',
    ),
});

export const CircuitSchema = z.strictObject({
  failures: z.number().int().min(1).default(5).describe('consecutive failures that open the circuit'),
  open_ms: z
    .number()
    .int()
    .min(1)
    .default(30_000)
    .describe('how long it stays open before a half-open probe'),
});

export const HealthCheckSchema = z.strictObject({
  enabled: z
    .boolean()
    .optional()
    .describe('default: on for HTTP backends (openai-compatible presets, anthropic), off for sim'),
  interval_ms: z.number().int().min(100).default(10_000),
  timeout_ms: z.number().int().min(50).default(2_000),
  unhealthy_threshold: z.number().int().min(1).default(3).describe('failed checks in a row that eject'),
  healthy_threshold: z.number().int().min(1).default(2).describe('passed checks in a row that readmit'),
});

export const SplitVariantSchema = z.strictObject({
  model: idString.describe('the variant: another model alias'),
  weight: z.number().min(0),
});

export const ModelSchema = z.strictObject({
  description: z.string().optional(),
  pricing: PricingSchema.optional(),
  backends: z.array(BackendSchema).default([]).describe('the pool; empty only for a split alias'),
  balance: z
    .enum(['round_robin', 'weighted_random', 'least_in_flight', 'latency', 'prefix_affinity'])
    .default('round_robin'),
  retry: RetrySchema.default(RetrySchema.parse({})),
  circuit: CircuitSchema.default(CircuitSchema.parse({})),
  health_check: HealthCheckSchema.default(HealthCheckSchema.parse({})),
  fallbacks: z
    .array(idString)
    .default([])
    .describe('model aliases (with backends, not split aliases) tried in order when every backend failed'),
  max_output_tokens: z
    .number()
    .int()
    .min(1)
    .optional()
    .describe(
      'the longest answer this model gives: for tenants with a token quota or tokens/min limit, a request without max_tokens reserves up to this and the upstream is capped at what was reserved. Default: the smallest its backends declare (engine 512, anthropic default_max_tokens), else admission.default_output_tokens',
    ),
  split: z
    .array(SplitVariantSchema)
    .min(2)
    .optional()
    .describe(
      'A/B: route this alias to variants by weight, sticky per user (x-portico-user or `user`) or key',
    ),
  timeout_ms: z
    .number()
    .int()
    .min(1)
    .optional()
    .describe('total time for one request to this model (all attempts)'),
  embeddings_batch_size: z
    .number()
    .int()
    .min(1)
    .max(4096)
    .default(256)
    .describe('inputs per upstream /embeddings call; larger requests are split and reassembled'),
  cache: CachePolicySchema.optional().describe('response cache policy for this model'),
});

export const StateSchema = z.discriminatedUnion('kind', [
  z.strictObject({
    kind: z.literal('embedded'),
    data_dir: z
      .string()
      .default('.portico-data')
      .describe('SQLite file lives here; relative to the working directory'),
    sqlite_cache_mb: z
      .number()
      .int()
      .min(1)
      .max(1024)
      .default(2)
      .describe(
        "SQLite's page cache, in MiB (SQLite's own default; the driver's build would take 16): the ledger is append-mostly, so a large cache buys little and stays resident once filled",
      ),
    journal_dir: z
      .string()
      .optional()
      .describe(
        "usage-ledger crash journal (one synchronous write per request, replayed at start-up); default: journal/ under data_dir; '' turns it off",
      ),
  }),
  z.strictObject({
    kind: z.literal('distributed'),
    redis: z.strictObject({
      url: nonEmpty.describe('redis://host:6379/0'),
      key_prefix: z.string().optional(),
    }),
    postgres: z.strictObject({
      url: nonEmpty.describe('postgres://user@host:5432/db'),
      schema: z.string().optional(),
      query_timeout_ms: z
        .number()
        .int()
        .min(100)
        .max(600_000)
        .default(5000)
        .describe(
          'a query Postgres does not answer within this fails: a key not cached yet gets 503 state_unavailable, an admin call 503, a ledger flush is retried; usage reports get at least 60 s. A partitioned server (connections open, nothing answering) holds a request this long instead of for the TCP timeouts (measured: 5.0 s with the default, docs/state.md)',
        ),
      connect_timeout_ms: z
        .number()
        .int()
        .min(100)
        .max(600_000)
        .default(5000)
        .describe(
          'bound on opening a Postgres connection, and on waiting for a free one in the pool (10 per replica)',
        ),
    }),
    redis_failure_mode: z
      .enum(['fail_open', 'fail_closed'])
      .default('fail_closed')
      .describe(
        'what limits do while Redis is unreachable (Redis only: key lookups and admin calls that need Postgres always fail closed)',
      ),
    journal_dir: z
      .string()
      .optional()
      .describe(
        "this replica's usage-ledger crash journal; give each replica its own volume (the Helm chart mounts one); default: .portico-data/journal-HASH, HASH naming the Postgres/Redis target; '' turns it off",
      ),
  }),
  z.strictObject({ kind: z.literal('memory') }).describe('nothing persists; tests and throwaway demos'),
]);

export const AdmissionSchema = z.strictObject({
  queue_timeout_ms: z
    .number()
    .int()
    .min(0)
    .default(2000)
    .describe('how long a request may wait for an in-flight slot'),
  max_queue: z
    .number()
    .int()
    .min(0)
    .default(1000)
    .describe('waiting requests per replica; beyond it, rejected at once'),
  default_output_tokens: z
    .number()
    .int()
    .min(1)
    .default(256)
    .describe(
      'the longest answer of a model that sets no max_output_tokens and whose backends declare none: what a request without max_tokens reserves, and is capped at, under a token quota or tokens/min limit',
    ),
  min_output_tokens: z
    .number()
    .int()
    .min(1)
    .default(16)
    .describe(
      'the shortest answer worth serving: a request whose remaining token budget, after its prompt, is below this (or below its max_tokens, if lower) is refused with insufficient_quota (or rate_limit_exceeded for tokens/min)',
    ),
  reservation_lease_ms: z
    .number()
    .int()
    .min(1000)
    .default(15_000)
    .describe(
      "lease of a quota reservation: its replica renews it every third of this while the request runs, so a crashed replica's reservations are released within one lease",
    ),
  per_ip: RateLimitsSchema.pick({ requests_per_second: true, burst: true })
    .optional()
    .describe('requests/s per client IP'),
  count_cache_hits_against_quota: z.boolean().default(true),
});

export const CacheSchema = z.strictObject({
  enabled: z.boolean().default(true).describe('exact-match response cache for chat and completions'),
  deterministic_only: z
    .boolean()
    .default(true)
    .describe('cache only requests with temperature 0 or a seed; tenants and models may override'),
  l1: z
    .strictObject({
      max_entries: z.number().int().min(1).default(10_000),
      max_bytes: z
        .number()
        .int()
        .min(1024)
        .default(64 * 1024 * 1024)
        .describe('memory bound of the in-process tier'),
      ttl_seconds: z.number().min(0.001).default(60),
    })
    .default({ max_entries: 10_000, max_bytes: 64 * 1024 * 1024, ttl_seconds: 60 }),
  l2: z
    .strictObject({
      enabled: z.boolean().default(false).describe('shared Redis tier'),
      url: nonEmpty.optional().describe('redis://host:6379/0; defaults to state.redis.url when distributed'),
      key_prefix: z.string().default('portico:cache:'),
      ttl_seconds: z.number().min(0.001).default(300),
      max_entry_bytes: z
        .number()
        .int()
        .min(1024)
        .default(1024 * 1024)
        .describe('larger responses are not stored in Redis'),
      timeout_ms: z.number().int().min(1).default(250).describe('a slower Redis answer counts as a miss'),
    })
    .default({
      enabled: false,
      key_prefix: 'portico:cache:',
      ttl_seconds: 300,
      max_entry_bytes: 1024 * 1024,
      timeout_ms: 250,
    }),
});

export const RedactPatternSchema = z.strictObject({
  name: z
    .string()
    .regex(/^[A-Z0-9_]{1,32}$/, 'upper-case letters, digits and _')
    .describe('shown as [REDACTED_<name>]'),
  regex: nonEmpty.describe('JavaScript regular expression source, applied globally'),
});

export const TelemetrySchema = z.strictObject({
  tracing: z
    .strictObject({
      enabled: z.boolean().default(false),
      endpoint: z.url().default('http://127.0.0.1:4318/v1/traces').describe('OTLP/HTTP traces endpoint'),
      sample_ratio: z.number().min(0).max(1).default(0.1).describe('share of new traces recorded'),
      service_name: z.string().default('portico'),
      headers: z.record(z.string(), z.string()).default({}).describe('sent with each export, e.g. auth'),
    })
    .default({
      enabled: false,
      endpoint: 'http://127.0.0.1:4318/v1/traces',
      sample_ratio: 0.1,
      service_name: 'portico',
      headers: {},
    }),
  audit: z
    .strictObject({
      enabled: z.boolean().default(false),
      dir: z
        .string()
        .default('audit')
        .describe(
          'JSONL files audit-YYYY-MM-DD.N.jsonl; relative to the working directory; created at start (a directory that cannot be created fails the start) and again if removed',
        ),
      bodies: z
        .boolean()
        .default(false)
        .describe('also store prompts and answers, PII-redacted; off = no prompt text anywhere in logs'),
      max_file_bytes: z
        .number()
        .int()
        .min(1024)
        .default(100 * 1024 * 1024)
        .describe('rotate to a new file beyond this size (files also rotate at UTC midnight)'),
      retention_days: z.number().int().min(1).default(30).describe('older files are deleted'),
      redact_patterns: z
        .array(RedactPatternSchema)
        .default([])
        .describe('extra patterns, on top of the built-in PII'),
    })
    .default({
      enabled: false,
      dir: 'audit',
      bodies: false,
      max_file_bytes: 100 * 1024 * 1024,
      retention_days: 30,
      redact_patterns: [],
    }),
});

export const LoggingSchema = z.strictObject({
  level: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']).default('info'),
  format: z
    .enum(['auto', 'json', 'pretty'])
    .default('auto')
    .describe('auto: one readable line per record when stdout is a terminal, JSON lines otherwise'),
});

export const ResponsesSchema = z.strictObject({
  ttl_hours: z
    .number()
    .int()
    .min(1)
    .max(24 * 365)
    .default(720)
    .describe(
      'how long a stored Responses API response (store: true) can be read or continued with previous_response_id; default 30 days',
    ),
});

export const ConfigSchema = z
  .strictObject({
    server: ServerSchema.default(ServerSchema.parse({})),
    admin: AdminSchema.default({ token: '', console: true, request_log_size: 1000 }),
    logging: LoggingSchema.default({ level: 'info', format: 'auto' }),
    state: StateSchema.default({ kind: 'embedded', data_dir: '.portico-data', sqlite_cache_mb: 2 }),
    admission: AdmissionSchema.default(AdmissionSchema.parse({})),
    cache: CacheSchema.default(CacheSchema.parse({})),
    responses: ResponsesSchema.default(ResponsesSchema.parse({})).describe(
      'the Responses API (POST /v1/responses): stored responses',
    ),
    telemetry: TelemetrySchema.default(TelemetrySchema.parse({})),
    tenants: z.array(TenantSchema).default([]),
    models: z.record(idString, ModelSchema).default({}),
    routes: z
      .record(idString, TeamRouteSchema)
      .default({})
      .describe('team routes: POST /api/{team}/predict, and optional dedicated paths'),
  })
  .superRefine((cfg, ctx) => {
    if (cfg.server.headers_timeout_ms > cfg.server.body_timeout_ms)
      ctx.addIssue({
        code: 'custom',
        path: ['server', 'headers_timeout_ms'],
        message: `must not exceed server.body_timeout_ms (${cfg.server.body_timeout_ms}): the body deadline covers the headers too`,
      });
    for (const p of crossCheck(cfg))
      if (!p.warning) ctx.addIssue({ code: 'custom', path: p.path, message: p.message });
  });

export type PorticoConfig = z.infer<typeof ConfigSchema>;
export type TenantConfig = z.infer<typeof TenantSchema>;
export type ModelConfig = z.infer<typeof ModelSchema>;
export type BackendConfig = z.infer<typeof BackendSchema>;
export type SimOptions = z.infer<typeof SimOptionsSchema>;
export type SimFaults = NonNullable<SimOptions['faults']>;
/** Simulator options as written in config or tests (defaults not yet applied). */
export type SimOptionsInput = z.input<typeof SimOptionsSchema>;
export type ApiKeyConfig = z.infer<typeof ApiKeySchema>;
export type RateLimits = z.infer<typeof RateLimitsSchema>;
export type Quota = z.infer<typeof QuotaSchema>;
export type Priority = z.infer<typeof PrioritySchema>;
export type StateConfigSchema = z.infer<typeof StateSchema>;
export type AdmissionConfig = z.infer<typeof AdmissionSchema>;
export type Pricing = z.infer<typeof PricingSchema>;
export type CacheConfig = z.infer<typeof CacheSchema>;
export type TeamRoute = z.infer<typeof TeamRouteSchema>;
export type TelemetryConfig = z.infer<typeof TelemetrySchema>;
export type RedactPattern = z.infer<typeof RedactPatternSchema>;
export type CachePolicy = z.infer<typeof CachePolicySchema>;
