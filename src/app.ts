/**
 * buildGateway: wiring only. Holds the current config snapshot (swapped atomically on reload),
 * the provider registry, metrics and logger, and the pipeline's dependencies.
 */
import { randomBytes } from 'node:crypto';
import { ConfigError, type LoadedConfig } from './config/load.js';
import { compileSnapshot, type Snapshot } from './pipeline/snapshot.js';
import type { PipelineDeps } from './pipeline/run.js';
import { ProviderRegistry } from './routing/registry.js';
import { loadTokenizer, tokenizerLoaded } from './tenancy/tokens.js';
import { GatewayMetrics } from './telemetry/metrics.js';
import { createLogger, type Logger } from './telemetry/logger.js';
import { digestsEqual, sha256Hex } from './lib/hash.js';
import { VERSION } from './version.js';
import { Tenancy, dailyBudgetOf, gainedQuotaScopes } from './tenancy/tenancy.js';
import type { SeedScope } from './tenancy/quota-seed.js';
import { ResponseCache } from './cache/response-cache.js';
import { createTracing, type Tracing } from './telemetry/tracing.js';
import { AuditLog } from './telemetry/audit.js';
import { Redactor } from './telemetry/redact.js';
import { HealthChecker, publishBackendState } from './routing/health.js';
import { MemoryResponseStore } from './state/memory/responses.js';
import { OpenRequests } from './pipeline/open-requests.js';

/** How long close() waits for requests still open (twice: before and after closing the backends). */
const CLOSE_WAIT_MS = 2_000;
/** How old the tenant budgets a scrape reports may be (read again in the background after it). */
const BUDGETS_TTL_MS = 10_000;

export interface GatewayOptions {
  logger?: Logger;
  /** Collect Node process metrics (off in tests that build many gateways). */
  defaultMetrics?: boolean;
  /** Hold start-up messages (an engine's model load) until releaseStartupLogs(): the CLI prints its banner first. */
  holdStartupLogs?: boolean;
}

export class Gateway {
  readonly logger: Logger;
  readonly metrics: GatewayMetrics;
  readonly deps: PipelineDeps;
  readonly startedAt = Date.now();
  /** Response cache; its sizes and Redis connection are fixed at start (policy follows reloads). */
  readonly cache: ResponseCache;
  /** Audit log and redaction are configured at start (telemetry.* is not hot-reloaded). */
  readonly audit: AuditLog | undefined;
  readonly redactor: Redactor;
  #registry: ProviderRegistry;
  #snapshot: Snapshot;
  #adminTokenHash: string;
  #generatedAdminToken: string | undefined;
  /** The admin token in force came from `admin.token` (not generated at start). */
  #adminTokenConfigured = false;
  #version = 0;
  #tenancy: Tenancy | undefined;
  #budgetCache: {
    list: Array<{ tenant: string; usd: number }> | undefined;
    at: number;
    reading: boolean;
    changed: boolean;
  } = { list: undefined, at: 0, reading: false, changed: false };
  #tracing: Tracing | undefined;
  #prompts: ReadonlyMap<string, string>;
  #ready = false;
  #draining = false;
  #heldLogs: Array<() => void> | undefined;

  constructor(loaded: LoadedConfig, opts: GatewayOptions = {}) {
    this.logger = opts.logger ?? createLogger(loaded.config.logging.level, loaded.config.logging.format);
    this.metrics = new GatewayMetrics({ version: VERSION, defaultMetrics: opts.defaultMetrics ?? true });
    const cfg = loaded.config;
    this.cache = new ResponseCache(cfg.cache, {
      metrics: this.metrics,
      logger: this.logger,
      redisUrl: cfg.state.kind === 'distributed' ? cfg.state.redis.url : undefined,
    });
    this.deps = {
      metrics: this.metrics,
      logger: this.logger,
      onFinish: [],
      cache: this.cache,
      // A bare gateway (no state store) keeps stored responses in memory.
      responses: new MemoryResponseStore(),
      openRequests: new OpenRequests(),
      isAdminToken: (sha256) => digestsEqual(sha256, this.#adminTokenHash),
    };
    const tel = cfg.telemetry;
    this.redactor = new Redactor(tel.audit.redact_patterns);
    this.deps.redactor = this.redactor;
    if (tel.audit.enabled) {
      const audit = new AuditLog(tel.audit, { logger: this.logger, redactor: this.redactor });
      this.audit = audit;
      // First hook: it captures the (redacted) bodies that later hooks (the console) show.
      this.deps.onFinish.unshift((ctx, status) => audit.record(ctx, status));
    }
    if (opts.holdStartupLogs) this.#heldLogs = [];
    this.#registry = new ProviderRegistry({
      metricsRegistry: this.metrics.registry,
      logger: this.logger,
      defer: (log) => (this.#heldLogs ? this.#heldLogs.push(log) : log()),
    });
    this.metrics.setUpstreamSource(() => this.#upstreamConnections());
    this.metrics.setBudgetSource(() => this.#budgets());
    const { pools } = this.#registry.build(loaded.config);
    this.#snapshot = compileSnapshot(loaded, pools, ++this.#version);
    this.#prompts = loaded.prompts;
    this.#warmTokenizer();
    const token = loaded.config.admin.token;
    if (token) {
      this.#adminTokenHash = sha256Hex(token);
      this.#adminTokenConfigured = true;
    } else {
      this.#generatedAdminToken = 'pt-admin-' + randomBytes(24).toString('base64url');
      this.#adminTokenHash = sha256Hex(this.#generatedAdminToken);
    }
    this.#publishBackendGauges();
    this.health = new HealthChecker(() => this.#snapshot, this.metrics, this.logger);
    this.health.start();
  }

  /** Active health checks of every backend (started with the gateway). */
  readonly health: HealthChecker;

  /**
   * The full gateway: config plus state (tenants and keys as data, limits, quotas, ledger) as
   * configured in `state:` (embedded SQLite by default).
   */
  static async create(loaded: LoadedConfig, opts: GatewayOptions = {}): Promise<Gateway> {
    const gw = new Gateway(loaded, opts);
    // An operator asked for an audit log: a directory that cannot be made is a start-up error.
    try {
      await gw.audit?.opened();
    } catch (err) {
      await gw.close();
      throw new ConfigError(loaded.source ?? '(config)', [
        {
          path: 'telemetry.audit.dir',
          message: `the audit directory ${loaded.config.telemetry.audit.dir} cannot be created or read (${err instanceof Error ? err.message : String(err)}); point it at a directory this process can write, or set telemetry.audit.enabled: false`,
        },
      ]);
    }
    // The OpenTelemetry SDK is loaded only when tracing is on.
    const tracing = loaded.config.telemetry.tracing;
    if (tracing.enabled) gw.#tracing = await createTracing(tracing, VERSION);
    const tenancy = await Tenancy.create(loaded.config, { logger: gw.logger, metrics: gw.metrics });
    gw.#tenancy = tenancy;
    gw.deps.tenancy = tenancy;
    gw.deps.responses = tenancy.state.responses;
    gw.deps.lookupKey = (plaintext, ctx) => tenancy.lookupKey(plaintext, ctx.snapshot);
    // A config tenant that is an API tenant's id: the start is refused (as a reload would be).
    const conflicts = await tenancy.configConflicts(loaded.config);
    if (conflicts.length > 0) {
      await gw.close();
      throw new ConfigError(loaded.source ?? '(config)', conflicts);
    }
    await tenancy.syncConfig(gw.#snapshot, gw.#prompts);
    await gw.#seedQuotas(() => tenancy.startupQuotaScopes(gw.#snapshot));
    gw.#warmTokenizer();
    return gw;
  }

  /** Tracing (telemetry.tracing, configured at start; not hot-reloaded); set up by create(). */
  get tracing(): Tracing | undefined {
    return this.#tracing;
  }

  get tenancy(): Tenancy | undefined {
    return this.#tenancy;
  }

  get snapshot(): Snapshot {
    return this.#snapshot;
  }
  /** The admin token generated at start-up when none was configured (printed once by the CLI). */
  get generatedAdminToken(): string | undefined {
    return this.#generatedAdminToken;
  }
  get adminTokenHash(): string {
    return this.#adminTokenHash;
  }
  get ready(): boolean {
    return this.#ready && !this.#draining;
  }
  markReady(): void {
    this.#ready = true;
  }
  /** Write the start-up messages held so far (holdStartupLogs); later ones are written at once. */
  releaseStartupLogs(): void {
    const held = this.#heldLogs ?? [];
    this.#heldLogs = undefined;
    for (const log of held) log();
  }
  get draining(): boolean {
    return this.#draining;
  }
  startDrain(): void {
    this.#draining = true;
  }

  /** Open sockets per HTTP backend of the current snapshot (portico_upstream_connections). */
  *#upstreamConnections(): Generator<{ backend: string; open: number }> {
    for (const pool of this.#snapshot.pools.values())
      for (const b of pool.backends)
        if (b.provider.upstream) yield { backend: b.id, open: b.provider.upstream.openConnections };
  }

  /**
   * Each tenant's daily budget (portico_tenant_daily_budget_usd, for the cost alerts): the tenant
   * store's records (config tenants are synced into it; admin-API tenants set theirs there), or the
   * config's tenants without a store. A scrape never waits on the store: it gets the list last read
   * (read again in the background once BUDGETS_TTL_MS old; at once after this replica changed a
   * tenant or its config), so an unreachable Postgres cannot hold /metrics up to its query timeout.
   * The first scrape waits for the first read. A store that cannot be read keeps the last list.
   */
  #budgets(): Promise<Array<{ tenant: string; usd: number }>> {
    const tenancy = this.#tenancy;
    if (!tenancy) {
      const out: Array<{ tenant: string; usd: number }> = [];
      for (const t of this.#snapshot.config.tenants)
        if (t.budget) out.push({ tenant: t.id, usd: t.budget.daily_usd });
      return Promise.resolve(out);
    }
    const c = this.#budgetCache;
    if (c.list !== undefined && !c.changed && (c.reading || Date.now() - c.at < BUDGETS_TTL_MS))
      return Promise.resolve(c.list);
    // After a change made here (the store has just answered) the scrape waits for the new list.
    const wait = c.list === undefined || c.changed;
    const read = this.#readBudgets(tenancy);
    return wait || c.list === undefined ? read : Promise.resolve(c.list);
  }

  async #readBudgets(tenancy: Tenancy): Promise<Array<{ tenant: string; usd: number }>> {
    const c = this.#budgetCache;
    c.reading = true;
    c.changed = false;
    try {
      const list: Array<{ tenant: string; usd: number }> = [];
      for (const rec of await tenancy.state.tenants.list()) {
        const usd = dailyBudgetOf(rec);
        if (usd !== undefined) list.push({ tenant: rec.id, usd });
      }
      c.list = list;
      c.at = Date.now();
    } catch (err) {
      this.logger.warn({ err }, 'tenant budgets not read: the tenant store could not be read');
      c.at = Date.now();
      c.list ??= [];
    } finally {
      c.reading = false;
    }
    return c.list;
  }

  /** A tenant (or the config) changed on this replica: the next scrape reads the budgets again. */
  budgetsChanged(): void {
    this.#budgetCache.changed = true;
  }

  /** Token limits and quotas estimate prompts up front: load the tokenizer before a request needs it. */
  #warmTokenizer(): void {
    if (tokenizerLoaded()) return;
    for (const t of this.#snapshot.tenants.values()) {
      if (t.limits?.tokens_per_minute || t.quota) {
        loadTokenizer();
        return;
      }
    }
    for (const k of this.#snapshot.keys.values()) {
      if (k.limits?.tokens_per_minute || k.quota) {
        loadTokenizer();
        return;
      }
    }
  }

  /**
   * A reload: refuse a config whose tenants collide with API tenants (a ConfigError with their
   * paths; nothing changes), else applyConfig.
   */
  async reloadConfig(loaded: LoadedConfig): Promise<Snapshot> {
    const conflicts = this.#tenancy ? await this.#tenancy.configConflicts(loaded.config) : [];
    if (conflicts.length > 0) throw new ConfigError(loaded.source ?? '(config)', conflicts);
    const prev = this.#snapshot;
    const next = this.applyConfig(loaded);
    // Tenants and keys whose quota the file just added count the day's usage so far.
    await this.#seedQuotas(async () => gainedQuotaScopes(prev, next));
    return next;
  }

  /**
   * Seed the quota counters of scopes that gained a quota from the ledger (quota-seed.ts). Best
   * effort: a store that cannot be read or written is logged, and the quota counts from now.
   */
  async #seedQuotas(scopes: () => Promise<SeedScope[]>): Promise<void> {
    const tenancy = this.#tenancy;
    if (!tenancy) return;
    try {
      await tenancy.seedQuotaUsage(
        await scopes(),
        this.#snapshot.config.admission.count_cache_hits_against_quota,
      );
    } catch (err) {
      this.logger.warn(
        { err },
        "a new quota could not count the day's usage from the ledger; it counts from now",
      );
    }
  }

  /** Swap in a new validated config. Unchanged backends keep their providers (and connections). */
  applyConfig(loaded: LoadedConfig): Snapshot {
    // Without admin.token a start generates a token and prints it; a reload has nowhere to show a
    // new one, and keeping the removed token valid would be a surprise: refuse, change nothing.
    if (this.#adminTokenConfigured && !loaded.config.admin.token)
      throw new ConfigError(loaded.source ?? '(config)', [
        {
          path: 'admin.token',
          message:
            'the admin token cannot be removed by a reload; the current token stays in force. Restart to run without admin.token (a start generates a new token and prints it), or write a new token here to replace the old one (a reload applies that at once)',
        },
      ]);
    const { pools, retired } = this.#registry.build(loaded.config);
    this.#snapshot = compileSnapshot(loaded, pools, ++this.#version);
    this.#prompts = loaded.prompts;
    this.#warmTokenizer();
    if (this.#tenancy) {
      this.#tenancy
        .syncConfig(this.#snapshot, loaded.prompts)
        .then(() => this.budgetsChanged())
        .catch((err: unknown) =>
          this.logger.error({ err }, 'syncing config tenants into the tenant store failed'),
        );
    }
    if (loaded.config.admin.token) {
      this.#adminTokenHash = sha256Hex(loaded.config.admin.token);
      this.#adminTokenConfigured = true;
    }
    this.metrics.backendUp.reset();
    this.#publishBackendGauges();
    // Let requests that already hold the retired providers finish before closing them.
    if (retired.length > 0) {
      setTimeout(() => void Promise.allSettled(retired.map((p) => p.close())), 60_000).unref();
    }
    return this.#snapshot;
  }

  #publishBackendGauges(): void {
    for (const [alias, pool] of this.#snapshot.pools) {
      for (const b of pool.backends) publishBackendState(this.metrics, b, alias);
    }
  }

  async close(): Promise<void> {
    this.health.stop();
    // Requests whose connections the drain deadline cut finish a moment later (their upstream call
    // aborted): their records must reach the journal and the ledger before the writer closes.
    const open = this.deps.openRequests;
    if (open && open.size > 0 && !(await open.idle(CLOSE_WAIT_MS))) {
      this.logger.warn({ open: open.size }, 'closing with requests still open; closing their backends');
    }
    await this.#registry.closeAll();
    // Closing a backend ends what still used it: give those a last moment to be accounted.
    if (open && open.size > 0 && !(await open.idle(CLOSE_WAIT_MS)))
      this.logger.error({ open: open.size }, 'requests still open at shutdown; their usage records are lost');
    await this.#tenancy?.close();
    await this.cache.close();
    await this.audit?.close();
    await this.#tracing?.shutdown();
  }
}
