/**
 * Prometheus metrics (prom-client). Names, labels and buckets follow docs/metrics.md. Label values
 * for tenant and model come from config only, so cardinality is bounded by config size. Label
 * children are cached per label tuple to keep the hot path cheap.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { FastCounter, FastHistogram, type CounterSeries, type HistogramSeries } from './fast-metrics.js';

export const LATENCY_BUCKETS = [
  0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 40, 80, 160, 320,
];
export const ITL_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 1, 2.5];

export const UNKNOWN_MODEL = '_unknown';
export const ANONYMOUS_TENANT = '_anonymous';
/** portico_fallbacks_total from_backend when the primary had no backend to try (circuits open). */
export const NO_BACKEND = '_none';
/** http_* endpoint label for requests that matched no route (bounded: never the raw path). */
export const UNMATCHED_ENDPOINT = '_unmatched';

/**
 * A memo of a metric's label children: prom-client's `labels()` builds a label object and a hash
 * on every call; the hot path asks for the same few tuples again and again. Bounded (cleared when
 * full) in case a label value ever comes from outside the config.
 */
export function childCache<C>(
  metric: { labels(...values: string[]): C },
  max = 10_000,
): (...values: string[]) => C {
  // One Map level per label: a lookup hashes label strings that already exist (their hashes are
  // cached), where one joined key would build and hash a new string on every call.
  let root = new Map<string, unknown>();
  let size = 0;
  const lookup = (...values: string[]): C => {
    let level = root;
    const last = values.length - 1;
    for (let i = 0; i < last; i++) {
      const v = values[i] as string;
      let next = level.get(v) as Map<string, unknown> | undefined;
      if (next === undefined) {
        next = new Map();
        level.set(v, next);
      }
      level = next;
    }
    const leaf = values[last] as string;
    let child = level.get(leaf) as C | undefined;
    if (child === undefined) {
      if (size >= max) {
        // Full: start over (the series themselves stay in the registry).
        root = new Map();
        size = 0;
        return lookup(...values);
      }
      child = metric.labels(...values);
      level.set(leaf, child);
      size++;
    }
    return child;
  };
  return lookup;
}

export class GatewayMetrics {
  readonly registry: Registry;
  readonly requests: FastCounter<'tenant' | 'model' | 'route' | 'status'>;
  /** Per-request and per-chunk series are FastCounters/FastHistograms (no label hashing per call). */
  readonly requestDuration: FastHistogram<'tenant' | 'model' | 'route'>;
  readonly ttft: FastHistogram<'tenant' | 'model'>;
  readonly itl: FastHistogram<'tenant' | 'model'>;
  readonly tokens: FastCounter<'tenant' | 'model' | 'direction'>;
  readonly inFlight: Gauge<'tenant'>;
  readonly upstreamRequests: FastCounter<'backend' | 'model' | 'status'>;
  readonly upstreamDuration: FastHistogram<'backend' | 'model'>;
  readonly upstreamErrors: Counter<'backend' | 'model' | 'class'>;
  readonly backendUp: Gauge<'backend' | 'model'>;
  readonly openConnections: Gauge;
  readonly connectionsRefused: Counter<'reason'>;
  readonly upstreamConnections: Gauge<'backend'>;
  #upstreamSource: () => Iterable<{ backend: string; open: number }> = () => [];
  #budgetSource: () => Promise<Iterable<{ tenant: string; usd: number }>> = () => Promise.resolve([]);
  readonly httpRequests: FastCounter<'method' | 'endpoint' | 'tenant' | 'status'>;
  readonly httpDuration: FastHistogram<'method' | 'endpoint' | 'tenant'>;
  readonly configReloads: Counter<'result'>;
  readonly configTenantsRetained: Gauge;
  readonly cost: FastCounter<'tenant' | 'model'>;
  readonly queueDepth: Gauge<'tenant'>;
  readonly queueWait: Histogram<'tenant'>;
  readonly rateLimitRejections: Counter<'tenant' | 'limit'>;
  readonly quotaRejections: Counter<'tenant' | 'window'>;
  readonly queueRejections: Counter<'tenant'>;
  readonly leaseLapses: Counter<'tenant' | 'lease'>;
  readonly stateErrors: Counter<'store' | 'mode'>;
  readonly stateUp: Gauge<'store'>;
  readonly dailyBudget: Gauge<'tenant'>;
  readonly ledgerDropped: Counter;
  readonly quotaCommitsOwed: Gauge;
  readonly quotaCommitsAbandoned: Counter;
  readonly circuitState: Gauge<'backend' | 'model'>;
  readonly retries: Counter<'model' | 'backend'>;
  readonly fallbacks: Counter<'model' | 'from_backend' | 'to_backend'>;
  readonly variantRequests: Counter<'model' | 'variant'>;
  readonly cacheLookups: Counter<'tenant' | 'tier' | 'result'>;
  readonly cacheEvictions: Counter<'tier'>;
  readonly cacheEntries: Gauge<'tier'>;
  readonly cacheBytes: Gauge<'tier'>;
  readonly cacheCoalesced: Counter<'tenant'>;
  readonly cacheL2Errors: Counter<'op'>;
  readonly cacheL2Up: Gauge;
  readonly cacheStoreSkipped: Counter<'tier'>;

  /** Cached label children of the per-request series (see childCache). */
  readonly child: {
    requests: (...v: string[]) => CounterSeries;
    requestDuration: (...v: string[]) => HistogramSeries;
    httpRequests: (...v: string[]) => CounterSeries;
    httpDuration: (...v: string[]) => HistogramSeries;
    inFlight: (...v: string[]) => Gauge.Internal<'tenant'>;
    tokens: (...v: string[]) => CounterSeries;
    cost: (...v: string[]) => CounterSeries;
    upstreamRequests: (...v: string[]) => CounterSeries;
    upstreamDuration: (...v: string[]) => HistogramSeries;
  };

  constructor(opts: { version: string; defaultMetrics?: boolean }) {
    const r = (this.registry = new Registry());
    if (opts.defaultMetrics !== false) collectDefaultMetrics({ register: r });
    this.requests = new FastCounter({
      name: 'portico_requests_total',
      help: 'Requests finished, by tenant, model alias, route and HTTP status',
      labelNames: ['tenant', 'model', 'route', 'status'],
      registers: [r],
    });
    this.requestDuration = new FastHistogram({
      name: 'portico_request_duration_seconds',
      help: 'End-to-end request time in the gateway',
      labelNames: ['tenant', 'model', 'route'],
      buckets: LATENCY_BUCKETS,
      registers: [r],
    });
    this.ttft = new FastHistogram({
      name: 'portico_time_to_first_token_seconds',
      help: 'Streaming: request start to first content sent to the client',
      labelNames: ['tenant', 'model'],
      buckets: LATENCY_BUCKETS,
      registers: [r],
    });
    this.itl = new FastHistogram({
      name: 'portico_inter_token_latency_seconds',
      help: 'Streaming: time between chunks sent to the client',
      labelNames: ['tenant', 'model'],
      buckets: ITL_BUCKETS,
      registers: [r],
    });
    this.tokens = new FastCounter({
      name: 'portico_tokens_total',
      help: 'Tokens accounted, by direction (input/output)',
      labelNames: ['tenant', 'model', 'direction'],
      registers: [r],
    });
    this.inFlight = new Gauge({
      name: 'portico_requests_in_flight',
      help: 'Requests being served',
      labelNames: ['tenant'],
      registers: [r],
    });
    this.upstreamRequests = new FastCounter({
      name: 'portico_upstream_requests_total',
      help: 'Upstream attempts by backend and outcome',
      labelNames: ['backend', 'model', 'status'],
      registers: [r],
    });
    this.upstreamDuration = new FastHistogram({
      name: 'portico_upstream_duration_seconds',
      help: 'Upstream attempt time',
      labelNames: ['backend', 'model'],
      buckets: LATENCY_BUCKETS,
      registers: [r],
    });
    this.upstreamErrors = new Counter({
      name: 'portico_upstream_errors_total',
      help: 'Failed upstream attempts by class',
      labelNames: ['backend', 'model', 'class'],
      registers: [r],
    });
    this.backendUp = new Gauge({
      name: 'portico_backend_up',
      help: '1 when the backend is healthy, 0 when ejected or down',
      labelNames: ['backend', 'model'],
      registers: [r],
    });
    this.openConnections = new Gauge({
      name: 'portico_open_connections',
      help: 'Client connections open',
      registers: [r],
    });
    this.connectionsRefused = new Counter({
      name: 'portico_connections_refused_total',
      help: 'Client connections closed by the edge: connection caps, header/body deadlines, malformed HTTP',
      labelNames: ['reason'],
      registers: [r],
    });
    const upstreamSource = (): Iterable<{ backend: string; open: number }> => this.#upstreamSource();
    this.upstreamConnections = new Gauge({
      name: 'portico_upstream_connections',
      help: 'Sockets open to each HTTP backend (in use or idle keep-alive), read at scrape time',
      labelNames: ['backend'],
      registers: [r],
      collect(this: Gauge<'backend'>) {
        this.reset();
        for (const u of upstreamSource()) this.set({ backend: u.backend }, u.open);
      },
    });
    this.httpRequests = new FastCounter({
      name: 'http_requests_total',
      help: 'HTTP requests (seed-compatible name)',
      labelNames: ['method', 'endpoint', 'tenant', 'status'],
      registers: [r],
    });
    this.httpDuration = new FastHistogram({
      name: 'http_request_duration_seconds',
      help: 'HTTP request duration (seed-compatible name)',
      labelNames: ['method', 'endpoint', 'tenant'],
      buckets: LATENCY_BUCKETS,
      registers: [r],
    });
    this.configReloads = new Counter({
      name: 'portico_config_reloads_total',
      help: 'Config reload attempts by result (ok/rejected)',
      labelNames: ['result'],
      registers: [r],
    });
    this.configTenantsRetained = new Gauge({
      name: 'portico_config_tenants_retained',
      help: 'Config tenants this replica does not declare, kept in the tenant store by its last config sync because they have API keys',
      registers: [r],
    });
    this.cost = new FastCounter({
      name: 'portico_cost_usd_total',
      help: 'Cost in USD from per-model prices',
      labelNames: ['tenant', 'model'],
      registers: [r],
    });
    this.queueDepth = new Gauge({
      name: 'portico_queue_depth',
      help: 'Requests waiting in the admission queue',
      labelNames: ['tenant'],
      registers: [r],
    });
    this.queueWait = new Histogram({
      name: 'portico_queue_wait_seconds',
      help: 'Time spent waiting in the admission queue',
      labelNames: ['tenant'],
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10],
      registers: [r],
    });
    this.rateLimitRejections = new Counter({
      name: 'portico_rate_limit_rejections_total',
      help: 'Requests refused by a rate limit (429)',
      labelNames: ['tenant', 'limit'],
      registers: [r],
    });
    this.quotaRejections = new Counter({
      name: 'portico_quota_rejections_total',
      help: 'Requests refused because a quota is spent (429 insufficient_quota)',
      labelNames: ['tenant', 'window'],
      registers: [r],
    });
    this.queueRejections = new Counter({
      name: 'portico_queue_rejections_total',
      help: 'Requests that timed out in the admission queue (503)',
      labelNames: ['tenant'],
      registers: [r],
    });
    this.leaseLapses = new Counter({
      name: 'portico_admission_lease_lapses_total',
      help: 'In-flight slots (lease=inflight) and quota holds (lease=quota) whose lease lapsed while their request ran, taken again',
      labelNames: ['tenant', 'lease'],
      registers: [r],
    });
    this.stateErrors = new Counter({
      name: 'portico_state_errors_total',
      help: 'State store operations that failed, by store and what was done (fail_open/fail_closed/retry)',
      labelNames: ['store', 'mode'],
      registers: [r],
    });
    this.stateUp = new Gauge({
      name: 'portico_state_backend_up',
      help: '1 when the state store is reachable',
      labelNames: ['store'],
      registers: [r],
    });
    const budgetSource = (): Promise<Iterable<{ tenant: string; usd: number }>> => this.#budgetSource();
    this.dailyBudget = new Gauge({
      name: 'portico_tenant_daily_budget_usd',
      help: "A tenant's daily budget in USD (tenants[].budget.daily_usd), read at scrape time; absent for a tenant without one",
      labelNames: ['tenant'],
      registers: [r],
      async collect(this: Gauge<'tenant'>) {
        const budgets = await budgetSource();
        this.reset();
        for (const b of budgets) this.set({ tenant: b.tenant }, b.usd);
      },
    });
    this.ledgerDropped = new Counter({
      name: 'portico_ledger_dropped_total',
      help: 'Usage records lost for good: dropped from the ledger buffer (full, or closed) with no copy in the crash journal, or refused by the ledger store for their data (logged with their id)',
      registers: [r],
    });
    this.quotaCommitsOwed = new Gauge({
      name: 'portico_quota_commits_owed',
      help: 'Quota commits the store refused (Redis down, SQLite locked), waiting for a retry',
      registers: [r],
    });
    this.quotaCommitsAbandoned = new Counter({
      name: 'portico_quota_commits_abandoned_total',
      help: 'Quota commits retried for 10 minutes or cut by shutdown without landing; the next start replays them from the ledger journal',
      registers: [r],
    });
    this.circuitState = new Gauge({
      name: 'portico_circuit_state',
      help: 'Circuit breaker per backend: 0 closed, 1 half-open, 2 open',
      labelNames: ['backend', 'model'],
      registers: [r],
    });
    this.retries = new Counter({
      name: 'portico_retries_total',
      help: 'Retried upstream attempts (labelled with the backend that failed)',
      labelNames: ['model', 'backend'],
      registers: [r],
    });
    this.fallbacks = new Counter({
      name: 'portico_fallbacks_total',
      help: 'Attempts moved to another backend (or fallback model); from_backend _none: the primary had none to try',
      labelNames: ['model', 'from_backend', 'to_backend'],
      registers: [r],
    });
    this.variantRequests = new Counter({
      name: 'portico_variant_requests_total',
      help: 'Requests routed to each variant of an A/B split alias',
      labelNames: ['model', 'variant'],
      registers: [r],
    });
    this.cacheLookups = new Counter({
      name: 'portico_cache_lookups_total',
      help: 'Cache lookups; tier = l1 or l2, result = hit or miss',
      labelNames: ['tenant', 'tier', 'result'],
      registers: [r],
    });
    this.cacheEvictions = new Counter({
      name: 'portico_cache_evictions_total',
      help: 'Cache entries evicted to stay within the size bounds',
      labelNames: ['tier'],
      registers: [r],
    });
    this.cacheEntries = new Gauge({
      name: 'portico_cache_entries',
      help: 'Entries held by the in-process cache tier',
      labelNames: ['tier'],
      registers: [r],
    });
    this.cacheBytes = new Gauge({
      name: 'portico_cache_bytes',
      help: 'Bytes held by the in-process cache tier',
      labelNames: ['tier'],
      registers: [r],
    });
    this.cacheCoalesced = new Counter({
      name: 'portico_cache_coalesced_total',
      help: 'Requests answered by joining an identical request already in flight (single-flight)',
      labelNames: ['tenant'],
      registers: [r],
    });
    this.cacheL2Errors = new Counter({
      name: 'portico_cache_l2_errors_total',
      help: 'Failed or timed-out Redis cache operations (served as misses)',
      labelNames: ['op'],
      registers: [r],
    });
    this.cacheL2Up = new Gauge({
      name: 'portico_cache_l2_up',
      help: '1 while the Redis cache tier is connected',
      registers: [r],
    });
    this.cacheStoreSkipped = new Counter({
      name: 'portico_cache_store_skipped_total',
      help: 'Responses not stored because they exceed the tier entry size limit',
      labelNames: ['tier'],
      registers: [r],
    });
    new Gauge({
      name: 'portico_build_info',
      help: 'Build information',
      labelNames: ['version', 'node_version'],
      registers: [r],
    }).set({ version: opts.version, node_version: process.version }, 1);
    this.child = {
      requests: childCache(this.requests),
      requestDuration: childCache(this.requestDuration),
      httpRequests: childCache(this.httpRequests),
      httpDuration: childCache(this.httpDuration),
      inFlight: childCache(this.inFlight),
      tokens: childCache(this.tokens),
      cost: childCache(this.cost),
      upstreamRequests: childCache(this.upstreamRequests),
      upstreamDuration: childCache(this.upstreamDuration),
    };
  }

  /** Where portico_upstream_connections reads its values at scrape time (the gateway's pools). */
  setUpstreamSource(source: () => Iterable<{ backend: string; open: number }>): void {
    this.#upstreamSource = source;
  }

  /** Where portico_tenant_daily_budget_usd reads the tenants' budgets at scrape time. */
  setBudgetSource(source: () => Promise<Iterable<{ tenant: string; usd: number }>>): void {
    this.#budgetSource = source;
  }

  /** Record one finished request (all per-request series in one call). */
  recordRequest(r: {
    tenant: string;
    model: string;
    route: string;
    endpoint: string;
    method: string;
    status: number;
    seconds: number;
  }): void {
    const status = String(r.status);
    const c = this.child;
    c.requests(r.tenant, r.model, r.route, status).inc();
    c.requestDuration(r.tenant, r.model, r.route).observe(r.seconds);
    c.httpRequests(r.method, r.endpoint, r.tenant, status).inc();
    c.httpDuration(r.method, r.endpoint, r.tenant).observe(r.seconds);
  }
}
