/**
 * Builds providers and pools from config. Providers are reused across hot reloads when their
 * backend config is unchanged, so connection pools and in-process engines survive a reload.
 */
import type { PorticoConfig, BackendConfig } from '../config/schema.js';
import type { Provider } from '../providers/spec.js';
import { OpenAICompatibleProvider } from '../providers/openai-compatible/provider.js';
import { Simulator } from '../sim/simulator.js';
import { createAnthropicProvider } from '../providers/anthropic/index.js';
import { PRESETS, type ProviderPreset } from '../providers/presets.js';
import { Pool, type Backend } from './pool.js';
import { CircuitBreaker } from './circuit.js';
import { EngineProvider } from '../engine/provider.js';
import type { Registry } from 'prom-client';
import { ModelResolveError } from '../engine/resolve.js';
import { downloadProgress } from '../lib/progress.js';
import type { Logger } from '../telemetry/logger.js';

/** What in-process providers report into: the gateway's metrics registry and log. */
export interface ProviderHost {
  metricsRegistry?: Registry;
  logger?: Logger;
  /** Where start-up messages go: held until the CLI has printed its banner (default: at once). */
  defer?: (log: () => void) => void;
}

export interface ProviderFactoryContext {
  config: PorticoConfig;
  alias: string;
}

/** Config headers: a preset's optional-header keys (e.g. openrouter `referer`) become their real names. */
function backendHeaders(preset: ProviderPreset | undefined, given: Record<string, string> | undefined) {
  const out: Record<string, string> = { ...(preset?.headers ?? {}) };
  for (const [k, v] of Object.entries(given ?? {})) out[preset?.optionalHeaders[k]?.header ?? k] = v;
  return out;
}

function createProvider(
  id: string,
  alias: string,
  b: BackendConfig,
  cfg: PorticoConfig,
  host: ProviderHost,
): Provider {
  const pool = cfg.server.upstream_pool;
  switch (b.provider) {
    case 'sim':
      return new Simulator(id, b.sim ?? {});
    case 'engine': {
      // A first-run download can take minutes: log its progress every 10 % (bytes, rate, ETA).
      const progress = downloadProgress(
        `engine ${id} downloading ${b.model_file}`,
        (line) =>
          (host.defer ?? ((f: () => void) => f()))(() => host.logger?.info({ backend: id }, line.trim())),
        false,
      );
      return new EngineProvider(id, {
        model: b.model_file,
        resolve: { onProgress: (done, total) => progress.update(done, total) },
        sequences: b.sequences,
        contextPerSequence: b.context_size,
        queueTimeoutMs: b.queue_timeout_ms,
        gpu: b.gpu === 'off' ? false : 'auto',
        ...(b.threads ? { threads: b.threads } : {}),
        ...(host.metricsRegistry ? { metrics: { registry: host.metricsRegistry, backend: id } } : {}),
        onLoad: (err) => {
          const log = (): void => {
            if (!err) {
              host.logger?.info({ backend: id, model: b.model_file }, 'engine model loaded');
              return;
            }
            // Offline or not downloadable: one warning that says what answers meanwhile and what to do.
            const fallbacks = cfg.models[alias]?.fallbacks ?? [];
            const simFallback = fallbacks.some((f) =>
              cfg.models[f]?.backends.some((x) => x.provider === 'sim'),
            );
            const meanwhile = fallbacks.length
              ? `requests to ${alias} go to its fallback${fallbacks.length > 1 ? 's' : ''} ${fallbacks.join(', ')}${simFallback ? ' (the simulator answers meanwhile)' : ''}`
              : `requests to ${alias} go to its other backends`;
            if (err instanceof ModelResolveError)
              host.logger?.warn(
                { backend: id, model: b.model_file, reason: err.message },
                `engine ${id} has no model yet: ${meanwhile}. To use a local GGUF file, set model_file to its path (the demo: PORTICO_DEMO_MODEL=/path/to/model.gguf npm start)`,
              );
            else
              host.logger?.error(
                { backend: id, model: b.model_file, err: err.message },
                `engine ${id} could not load its model; ${meanwhile}`,
              );
          };
          (host.defer ?? ((f: () => void) => f()))(log);
        },
      });
    }
    case 'anthropic':
      return createAnthropicProvider({
        id,
        ...(b.base_url ? { baseUrl: b.base_url } : {}),
        apiKey: b.api_key,
        model: b.model ?? alias,
        defaultMaxTokens: b.default_max_tokens,
        connections: pool.connections,
        keepAliveTimeoutMs: pool.keep_alive_timeout_ms,
        headers: backendHeaders(PRESETS.anthropic, b.headers),
      });
    case 'openai':
    case 'vllm':
    case 'llamacpp':
    case 'ollama':
    case 'openrouter':
    case 'together': {
      // provider: openai without a base_url is OpenAI itself (its quirks); with one, any
      // OpenAI-compatible server sent requests as they are.
      const preset =
        b.provider === 'openai' ? (b.base_url ? undefined : PRESETS.openai) : PRESETS[b.provider];
      return new OpenAICompatibleProvider({
        id,
        baseUrl: b.base_url ?? preset?.baseUrl ?? PRESETS.openai.baseUrl,
        model: b.model ?? alias,
        ...(b.api_key ? { apiKey: b.api_key } : {}),
        headers: backendHeaders(preset, b.headers),
        forceIncludeUsage: b.force_include_usage ?? preset?.quirks.forceIncludeUsage ?? true,
        ...(preset ? { quirks: preset.quirks } : {}),
        connections: pool.connections,
        keepAliveTimeoutMs: pool.keep_alive_timeout_ms,
        pipelining: pool.pipelining,
        ...(b.timeout_ms ? { timeoutMs: b.timeout_ms } : {}),
        streamIdleTimeoutMs: cfg.server.stream_idle_timeout_ms,
        nativeResponses: b.responses_api === 'native',
      });
    }
  }
}

export function backendId(alias: string, index: number, b: BackendConfig): string {
  return b.id ?? `${alias}-${index}`;
}

export class ProviderRegistry {
  readonly #host: ProviderHost;
  constructor(host: ProviderHost = {}) {
    this.#host = host;
  }
  #live = new Map<string, { signature: string; provider: Provider; backend?: Backend }>();

  /** Build pools for a config, reusing unchanged providers (and their backend state: circuit,
   * health, latency); returns providers no longer used. */
  build(cfg: PorticoConfig): { pools: Map<string, Pool>; retired: Provider[] } {
    const next = new Map<string, { signature: string; provider: Provider; backend?: Backend }>();
    const pools = new Map<string, Pool>();
    for (const [alias, model] of Object.entries(cfg.models)) {
      if (model.backends.length === 0) continue; // a split alias: its variants have the pools
      const backends: Backend[] = model.backends.map((b, i) => {
        const id = backendId(alias, i, b);
        const signature = JSON.stringify([
          alias,
          b,
          cfg.server.upstream_pool,
          cfg.server.stream_idle_timeout_ms,
        ]);
        const existing = this.#live.get(id);
        const reuse = existing && existing.signature === signature;
        const provider = reuse ? existing.provider : createProvider(id, alias, b, cfg, this.#host);
        const backend: Backend =
          reuse && existing.backend
            ? existing.backend
            : {
                id,
                provider,
                weight: b.weight,
                config: b,
                upstreamModel: b.model ?? alias,
                inFlight: 0,
                healthy: true,
                coolingUntil: 0,
                circuit: new CircuitBreaker(model.circuit.failures, model.circuit.open_ms),
              };
        backend.circuit.threshold = model.circuit.failures;
        backend.circuit.openMs = model.circuit.open_ms;
        next.set(id, { signature, provider, backend });
        // the engine is unavailable (skipped by the pool) until its model has loaded
        if (provider instanceof EngineProvider) provider.attach(backend);
        return backend;
      });
      pools.set(alias, new Pool(alias, backends, model.balance));
    }
    const retired: Provider[] = [];
    for (const [id, entry] of this.#live)
      if (next.get(id)?.provider !== entry.provider) retired.push(entry.provider);
    this.#live = next;
    return { pools, retired };
  }

  async closeAll(): Promise<void> {
    await Promise.allSettled([...this.#live.values()].map((e) => e.provider.close()));
    this.#live.clear();
  }
}
