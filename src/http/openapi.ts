/**
 * The admin API as OpenAPI 3, served at /docs (Swagger UI) and /docs/json, /docs/yaml.
 *
 * Imported on the first request under /docs (./docs.ts): `buildDocsApp` registers the gateway's
 * recorded routes in a small Fastify app of its own, attaching these schemas by method and path,
 * with @fastify/swagger and @fastify/swagger-ui. The gateway's own routes never carry them: their
 * handlers validate with zod (the request schemas below are generated from those same zod
 * schemas). An /admin route with no entry here is still listed (tag `admin`); one that brings its
 * own schema keeps it.
 */
import Fastify, { type FastifyInstance, type FastifySchema, type HTTPMethods } from 'fastify';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import { z } from 'zod';
import { VERSION } from '../version.js';
import type { RecordedRoute } from './docs.js';
import { KeysQuery, NewKeyBody, NewTenantBody, PatchTenantBody, UsageQuery } from './routes/admin.js';
import { PlaygroundBody, RequestsQuery, StatsQuery } from './routes/console.js';

type Json = Record<string, unknown>;

const fromZod = (s: z.ZodType): Json =>
  z.toJSONSchema(s, { target: 'openapi-3.0', io: 'input', unrepresentable: 'any' }) as Json;

const str = { type: 'string' };
const nstr = { type: 'string', nullable: true };
const num = { type: 'number' };
const nnum = { type: 'number', nullable: true };
const int = { type: 'integer' };
const obj = (properties: Json, extra: Json = {}): Json => ({ type: 'object', properties, ...extra });
const list = (items: Json): Json =>
  obj({ object: { type: 'string', enum: ['list'] }, data: { type: 'array', items } });

const ErrorBody = obj({
  error: obj({ message: str, type: str, param: nstr, code: str }),
});
const Limits = obj(
  { requests_per_second: num, burst: int, tokens_per_minute: int, max_in_flight: int },
  { nullable: true },
);
const QuotaObj = obj(
  { daily_tokens: int, monthly_tokens: int, daily_requests: int, monthly_requests: int },
  { nullable: true },
);
/**
 * `schema` with an optional `warning` (the change was saved, but the other replicas could not be
 * told yet: routes/admin.ts undeliveredWarning).
 */
function withWarning(schema: Json): Json {
  return { ...schema, properties: { ...(schema.properties as Json), warning: str } };
}

const Tenant = obj({
  id: str,
  display_name: str,
  company: nstr,
  industry: nstr,
  system_prompt: str,
  prompt_policy: { type: 'string', enum: ['prepend', 'replace', 'none'] },
  allowed_models: { type: 'array', items: str },
  limits: Limits,
  quota: QuotaObj,
  max_tokens_cap: { type: 'integer', nullable: true },
  default_model: nstr,
  priority: str,
  source: { type: 'string', enum: ['config', 'api'] },
  read_only: { type: 'boolean', description: 'declared in the config file: edit the file instead' },
  created_at: str,
});
const QuotaUse = obj({
  window: str,
  windowId: str,
  usedTokens: int,
  usedRequests: int,
  reservedTokens: int,
  reservedRequests: int,
  resetAt: { type: 'integer', description: 'epoch ms' },
  limitTokens: { type: 'integer', nullable: true },
  limitRequests: { type: 'integer', nullable: true },
  source: {
    type: 'string',
    enum: ['quota', 'ledger'],
    description:
      "quota: the quota's counters (reserved: holds of requests in flight); ledger: the tenant has no quota, the figures are the usage ledger's for the window (reserved: 0)",
  },
});
const Key = obj({
  id: str,
  tenant_id: str,
  label: str,
  prefix: nstr,
  expires_at: nstr,
  revoked_at: nstr,
  limits: Limits,
  quota: QuotaObj,
  created_at: nstr,
  source: { type: 'string', enum: ['config', 'api'] },
});
const UsageRow = obj({
  tenant: str,
  group: { type: 'string', description: 'day, month, model alias or key id' },
  requests: int,
  tokens_in: int,
  tokens_out: int,
  cost_usd: num,
  estimated: { type: 'integer', description: 'requests with estimated token counts' },
});
const statsRowProps = {
  requests: int,
  rps: num,
  errors: int,
  error_rate: num,
  p50_ms: nnum,
  p95_ms: nnum,
  mean_ms: nnum,
  tokens_in: int,
  tokens_out: int,
  cost_usd: num,
};
const Stats = obj({
  object: { type: 'string', enum: ['stats'] },
  now: int,
  window_s: int,
  step_s: int,
  totals: obj(statsRowProps),
  by_tenant: { type: 'array', items: obj({ tenant: str, ...statsRowProps }) },
  by_model: { type: 'array', items: obj({ model: str, ...statsRowProps }) },
  by_backend: { type: 'array', items: obj({ backend: str, ...statsRowProps }) },
  series: {
    type: 'array',
    items: obj({ t: int, rps: num, error_rate: num, p50_ms: nnum, p95_ms: nnum, tokens: int }),
  },
});
const RequestRecord = obj({
  request_id: str,
  correlation_id: str,
  time: str,
  tenant: nstr,
  key_id: nstr,
  model: nstr,
  variant: { type: 'string', nullable: true, description: 'A/B split: the variant alias that served it' },
  backend: nstr,
  fallback_model: {
    type: 'string',
    nullable: true,
    description: "the fallback model alias that answered, when the requested model's backends could not",
  },
  route: str,
  endpoint: str,
  status: int,
  stream: { type: 'boolean' },
  latency_ms: num,
  ttft_ms: nnum,
  tokens_in: int,
  tokens_out: int,
  tokens_estimated: { type: 'boolean' },
  partial: {
    type: 'boolean',
    description:
      'the answer was cut short (stream cancelled or broken off); billed for what reached the client',
  },
  cost_usd: num,
  cache_hit: nstr,
  error: obj(
    { code: str, message: str },
    { nullable: true, description: 'why it failed: the error code and message the client got' },
  ),
  request_body: { type: 'string', description: 'redacted; only when audit bodies are enabled' },
  response_body: { type: 'string', description: 'redacted; only when audit bodies are enabled' },
});
const backendProps = {
  id: str,
  provider: str,
  state: { type: 'string', enum: ['healthy', 'ejected', 'open', 'half_open'] },
  reason: nstr,
  circuit: obj({ state: str, consecutive_failures: int, opened_at: nstr, retry_at: nstr }),
  in_flight: int,
  upstream_connections: { type: 'integer', nullable: true, description: 'HTTP backends: sockets open now' },
  weight: num,
  latency_ewma_ms: nnum,
  last_error: nstr,
  last_error_at: nstr,
};
const chainProps = {
  chain: {
    type: 'array',
    items: str,
    description: 'the alias, then its fallbacks (those with backends): the order requests try them',
  },
  fallbacks: { type: 'array', items: str, description: 'the configured fallbacks, in order' },
  serving: obj(
    {
      model: { type: 'string', description: 'the alias of the chain that answers: this one or a fallback' },
      backends: { type: 'array', items: str },
      fallback: {
        type: 'boolean',
        description: 'a fallback answers (no backend of the alias is in service)',
      },
      degraded: {
        type: 'boolean',
        description: 'only backends ejected by health checks remain (still tried)',
      },
    },
    { nullable: true, description: 'who answers a request now; null when no backend of the chain can' },
  ),
};
const Model = obj({
  id: str,
  strategy: nstr,
  split: {
    type: 'array',
    nullable: true,
    description: 'A/B split alias: its variants (no backends of its own)',
    items: obj({ model: str, weight: num }),
  },
  pricing: obj({ input_per_million: num, output_per_million: num }, { nullable: true }),
  ...chainProps,
  variants: {
    type: 'array',
    nullable: true,
    description:
      "a split alias's variants, each with its own chain and serving member (the split's serving merges them: null only when no variant can take a request); null for an alias with backends",
    items: obj({ model: str, weight: num, ...chainProps }),
  },
  fallback_for: { type: 'array', items: str, description: 'aliases that fall back to this one' },
  backends: {
    type: 'array',
    items: obj({
      ...backendProps,
      model: { type: 'string', description: 'upstream model' },
      healthy: { type: 'boolean' },
    }),
  },
});
const BackendPool = obj({
  model: str,
  strategy: str,
  backends: { type: 'array', items: obj(backendProps) },
  ...chainProps,
});
const idParam = (what: string): Json =>
  obj({ id: { type: 'string', description: what } }, { required: ['id'] });

interface Doc {
  tags: string[];
  summary: string;
  description?: string;
  params?: Json;
  querystring?: Json;
  body?: Json;
  response: Record<number, Json>;
  produces?: string[];
}

const T = ['tenants'];
const K = ['keys'];
const C = ['console'];
const errors = { 400: ErrorBody, 401: ErrorBody, 404: ErrorBody };

export const ADMIN_DOCS: Record<string, Doc> = {
  'GET /admin/tenants': {
    tags: T,
    summary: 'List tenants (config and API)',
    response: { 200: list(Tenant) },
  },
  'POST /admin/tenants': {
    tags: T,
    summary: 'Create a tenant',
    body: fromZod(NewTenantBody),
    response: { 201: Tenant, 409: ErrorBody, ...errors },
  },
  'GET /admin/tenants/:id': {
    tags: T,
    summary: 'A tenant with its quota use today and this month',
    params: idParam('tenant id'),
    response: {
      200: {
        ...Tenant,
        properties: { ...(Tenant.properties as Json), usage: obj({ day: QuotaUse, month: QuotaUse }) },
      },
      ...errors,
    },
  },
  'PATCH /admin/tenants/:id': {
    tags: T,
    summary: 'Update a tenant (403 for tenants declared in the config file)',
    params: idParam('tenant id'),
    body: fromZod(PatchTenantBody),
    response: { 200: withWarning(Tenant), 403: ErrorBody, ...errors },
  },
  'DELETE /admin/tenants/:id': {
    tags: T,
    summary:
      "Delete a tenant and its keys (403 for config tenants this replica's config declares; one it does not declare, kept by a config sync for its API keys, is deleted)",
    description:
      'Its usage ledger rows and its quota usage of the current day and month stay under its id: usage stays queryable, and a tenant created again with the same id starts where this one left off (delete and re-create is no way around a quota). docs/admin-api.md',
    params: idParam('tenant id'),
    response: { 204: { type: 'null', description: 'deleted' }, 403: ErrorBody, ...errors },
  },
  'GET /admin/tenants/:id/keys': {
    tags: K,
    summary: "A tenant's keys (never a secret)",
    params: idParam('tenant id'),
    response: { 200: list(Key), ...errors },
  },
  'POST /admin/tenants/:id/keys': {
    tags: K,
    summary: 'Create a key; the key itself is in this answer only',
    params: idParam('tenant id'),
    body: fromZod(NewKeyBody),
    response: {
      201: { ...Key, properties: { key: str, warning: str, ...(Key.properties as Json) } },
      ...errors,
    },
  },
  'GET /admin/keys': {
    tags: K,
    summary: 'List keys',
    querystring: fromZod(KeysQuery),
    response: { 200: list(Key), 400: ErrorBody, 401: ErrorBody },
  },
  'POST /admin/keys/:id/revoke': {
    tags: K,
    summary: 'Revoke a key (every replica refuses it within a second)',
    description:
      'A `warning` in the answer when the other replicas could not be told yet (neither Redis nor Postgres took the invalidation): they may accept the key for up to 30 s; the gateway retries.',
    params: idParam('key id'),
    response: { 200: withWarning(Key), ...errors },
  },
  'GET /admin/usage': {
    tags: ['usage'],
    summary: 'Usage and cost from the ledger, grouped by day, month, model or key',
    description:
      'Every usage record buffered for the ledger is written first. A 503 `state_unavailable` (with retry-after) when the ledger store cannot be read, or when records could not be written to it yet: totals without them would be low.',
    querystring: fromZod(UsageQuery),
    response: {
      200: { ...list(UsageRow), properties: { ...(list(UsageRow).properties as Json), group_by: str } },
      503: ErrorBody,
      ...errors,
    },
  },
  'GET /admin/stats': {
    tags: C,
    summary: 'Live numbers over a sliding window (this replica, in-process)',
    querystring: fromZod(StatsQuery),
    response: { 200: Stats, ...errors },
  },
  'GET /admin/requests': {
    tags: C,
    summary: 'The latest finished requests, newest first',
    querystring: fromZod(RequestsQuery),
    response: {
      200: {
        ...list(RequestRecord),
        properties: { ...(list(RequestRecord).properties as Json), capacity: int },
      },
      ...errors,
    },
  },
  'GET /admin/requests/:id': {
    tags: C,
    summary: 'One of the latest requests by its id',
    params: idParam('request id (x-request-id)'),
    response: { 200: RequestRecord, ...errors },
  },
  'GET /admin/models': {
    tags: C,
    summary: 'Model aliases and their pools of backends',
    response: { 200: list(Model), 401: ErrorBody },
  },
  'GET /admin/backends': {
    tags: ['routing'],
    summary: 'Every pool and backend: state, circuit, in-flight, latency, last error',
    response: { 200: list(BackendPool), 401: ErrorBody },
  },
  'POST /admin/playground': {
    tags: C,
    summary: 'Ask one question as a tenant; the answer streams as Server-Sent Events',
    description:
      'Runs the full pipeline as the chosen tenant (limits, quotas, prompt, routing, metrics, ledger). The stream is OpenAI chat.completion.chunk events ending with [DONE]; x-request-id names the request in GET /admin/requests/{id}.',
    body: fromZod(PlaygroundBody),
    produces: ['text/event-stream'],
    response: { 200: { type: 'string', description: 'text/event-stream' }, 429: ErrorBody, ...errors },
  },
};

const RESPONSE_ID = { type: 'object', properties: { id: { type: 'string', description: 'resp_...' } } };
const ResponseObj = obj(
  {
    id: str,
    object: { type: 'string', enum: ['response'] },
    created_at: int,
    status: { type: 'string', enum: ['completed', 'incomplete', 'failed', 'in_progress'] },
    model: { type: 'string', description: 'the model alias asked for' },
    output: { type: 'array', items: { type: 'object', description: 'message or function_call item' } },
    usage: obj({ input_tokens: int, output_tokens: int, total_tokens: int }, { nullable: true }),
    previous_response_id: nstr,
    store: { type: 'boolean' },
  },
  { additionalProperties: true },
);
const R = ['responses'];
const tenantErrors = { 400: ErrorBody, 401: ErrorBody, 404: ErrorBody, 429: ErrorBody };

/** The Responses API (tenant key), documented in docs/responses.md. */
export const RESPONSES_DOCS: Record<string, Doc> = {
  'POST /v1/responses': {
    tags: R,
    summary: 'Create a model response (OpenAI Responses API)',
    description:
      'Runs the full pipeline (tenant prompt, limits, quotas, cache, routing, accounting) on any chat backend, or passes through to backends configured `responses_api: native`. `stream: true` answers typed Server-Sent Events (response.created ... response.completed). Unsupported parameters (hosted tools, background, reasoning on bridged backends) are 400s naming the parameter. See docs/responses.md.',
    body: obj(
      {
        model: str,
        input: {
          description:
            'a string or an array of input items (messages, function_call, function_call_output, item_reference)',
        },
        instructions: nstr,
        tools: { type: 'array', items: { type: 'object' } },
        tool_choice: {},
        text: obj({ format: { type: 'object' } }),
        max_output_tokens: { type: 'integer', nullable: true },
        temperature: nnum,
        top_p: nnum,
        metadata: { type: 'object', additionalProperties: { type: 'string' } },
        user: nstr,
        parallel_tool_calls: { type: 'boolean' },
        store: {
          type: 'boolean',
          description: 'default true: kept for responses.ttl_hours, readable by this tenant only',
        },
        stream: { type: 'boolean' },
        previous_response_id: nstr,
      },
      { required: ['model'], additionalProperties: true },
    ),
    produces: ['application/json', 'text/event-stream'],
    response: { 200: ResponseObj, ...tenantErrors },
  },
  'GET /v1/responses/:id': {
    tags: R,
    summary: "A stored response (this tenant's only; others get 404)",
    params: RESPONSE_ID,
    response: { 200: ResponseObj, ...tenantErrors },
  },
  'DELETE /v1/responses/:id': {
    tags: R,
    summary: 'Delete a stored response',
    params: RESPONSE_ID,
    response: { 200: obj({ id: str, object: str, deleted: { type: 'boolean' } }), ...tenantErrors },
  },
  'GET /v1/responses/:id/input_items': {
    tags: R,
    summary: "A stored response's input items (newest first unless order=asc)",
    params: RESPONSE_ID,
    querystring: obj({ limit: int, order: { type: 'string', enum: ['asc', 'desc'] }, after: str }),
    response: { 200: { ...list({ type: 'object' }), additionalProperties: true }, ...tenantErrors },
  },
};

/** The docs app (./docs.ts): the gateway's routes with the documentation above, and /docs. */
export async function buildDocsApp(routes: readonly RecordedRoute[]): Promise<FastifyInstance> {
  const app = Fastify({ logger: false });
  // The handlers below never run (only /docs is asked of this app): no validation, no serializers.
  app.setValidatorCompiler(() => () => true);
  app.setSerializerCompiler(() => (data) => JSON.stringify(data));
  app.addHook('onRoute', (route) => {
    const method = Array.isArray(route.method) ? route.method[0] : route.method;
    if (!method || method === 'HEAD') return;
    const responsesDoc = RESPONSES_DOCS[`${method} ${route.url}`];
    if (responsesDoc && !route.schema) {
      const { produces, ...rest } = responsesDoc;
      route.schema = {
        ...rest,
        security: [{ tenantKey: [] }],
        ...(produces ? { produces } : {}),
      } as FastifySchema;
      return;
    }
    if (!route.url.startsWith('/admin')) return;
    const security = [{ adminToken: [] }];
    if (route.schema) {
      // A route that brings its own schema keeps it; it is only tagged.
      route.schema = { tags: ['admin'], security, ...route.schema } as FastifySchema;
      return;
    }
    const doc: Doc = ADMIN_DOCS[`${method} ${route.url}`] ?? {
      tags: ['admin'],
      summary: `${method} ${route.url}`,
      response: {},
    };
    const { produces, ...rest } = doc;
    route.schema = { ...rest, security, ...(produces ? { produces } : {}) } as FastifySchema;
  });
  await app.register(swagger, {
    hideUntagged: true,
    openapi: {
      openapi: '3.0.3',
      info: {
        title: 'Portico admin API',
        version: VERSION,
        description:
          'Tenants, keys, usage and the console endpoints: every call needs `Authorization: Bearer <admin token>` (docs/admin-api.md). Also the OpenAI Responses API (`/v1/responses`, a tenant API key; docs/responses.md). Errors have the OpenAI error shape.',
      },
      components: {
        securitySchemes: {
          adminToken: { type: 'http', scheme: 'bearer' },
          tenantKey: { type: 'http', scheme: 'bearer', description: 'a tenant API key' },
        },
      },
      tags: [
        { name: 'tenants', description: 'Tenants (config-file tenants are read-only here)' },
        { name: 'keys', description: 'API keys: created (shown once) and revoked' },
        { name: 'usage', description: 'Usage and cost from the ledger' },
        { name: 'console', description: 'Live stats, request log, models, playground' },
        { name: 'routing', description: 'Pools and backends' },
        { name: 'admin', description: 'Other admin endpoints' },
        { name: 'responses', description: 'The OpenAI Responses API (tenant API key; docs/responses.md)' },
      ],
    },
  });
  await app.register(swaggerUi, { routePrefix: '/docs' });
  const never = (): never => {
    throw new Error('the docs app serves /docs only');
  };
  for (const r of routes)
    app.route({
      method: r.method as HTTPMethods,
      url: r.url,
      ...(r.schema ? { schema: r.schema } : {}),
      handler: never,
    });
  await app.ready();
  return app;
}
