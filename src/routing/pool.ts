/**
 * A model alias maps to a pool of backends. The pool picks one per request with its balancing
 * strategy. Backends that are marked down are skipped while any healthy one remains.
 */
import type { Provider } from '../providers/spec.js';
import type { BackendConfig } from '../config/schema.js';

export interface Backend {
  readonly id: string;
  readonly provider: Provider;
  readonly weight: number;
  readonly config: BackendConfig;
  /** Upstream model name sent to this backend. */
  readonly upstreamModel: string;
  inFlight: number;
  healthy: boolean;
  lastError?: string;
}

export type BalanceStrategy = 'round_robin' | 'weighted_random';

export class Pool {
  readonly alias: string;
  readonly backends: readonly Backend[];
  readonly strategy: BalanceStrategy;
  /** Smooth weighted round-robin state (nginx's algorithm): deterministic and evenly interleaved. */
  #current: number[];

  constructor(alias: string, backends: Backend[], strategy: BalanceStrategy = 'round_robin') {
    if (backends.length === 0) throw new Error(`model ${alias} has no backends`);
    this.alias = alias;
    this.backends = backends;
    this.strategy = strategy;
    this.#current = backends.map(() => 0);
  }

  /** Pick a backend, skipping `exclude` (already tried) and unhealthy ones while healthy ones remain. */
  pick(exclude?: ReadonlySet<string>, random: () => number = Math.random): Backend | undefined {
    const n = this.backends.length;
    if (n === 1) {
      const only = this.backends[0] as Backend;
      return exclude?.has(only.id) ? undefined : only;
    }
    let candidates = this.backends.filter((b) => b.weight > 0 && b.healthy && !exclude?.has(b.id));
    if (candidates.length === 0)
      candidates = this.backends.filter((b) => b.weight > 0 && !exclude?.has(b.id));
    if (candidates.length === 0) return undefined;
    if (this.strategy === 'weighted_random') {
      const total = candidates.reduce((s, b) => s + b.weight, 0);
      let r = random() * total;
      for (const b of candidates) {
        r -= b.weight;
        if (r < 0) return b;
      }
      return candidates[candidates.length - 1];
    }
    return this.#smoothWeighted(candidates);
  }

  #smoothWeighted(candidates: Backend[]): Backend {
    let total = 0;
    let best: Backend | undefined;
    let bestIdx = -1;
    for (const b of candidates) {
      const i = this.backends.indexOf(b);
      this.#current[i] = (this.#current[i] as number) + b.weight;
      total += b.weight;
      if (best === undefined || (this.#current[i] as number) > (this.#current[bestIdx] as number)) {
        best = b;
        bestIdx = i;
      }
    }
    this.#current[bestIdx] = (this.#current[bestIdx] as number) - total;
    return best as Backend;
  }
}
