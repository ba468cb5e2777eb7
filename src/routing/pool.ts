/**
 * A model alias maps to a pool of backends. The pool picks one per request with its balancing
 * strategy, skipping backends whose circuit is open and, while others remain, backends cooling down
 * after a retry-after and backends that the health checker ejected:
 * - round_robin: smooth weighted round-robin (nginx's algorithm): deterministic, evenly interleaved;
 * - weighted_random: random in proportion to weight;
 * - least_in_flight: fewest requests in flight per unit of weight;
 * - latency: power of two choices on EWMA latency x (in flight + 1);
 * - prefix_affinity: consistent hashing of the prompt prefix (e.g. a tenant's system prompt) so a
 *   backend's KV/prefix cache is reused; adding a backend moves only ~1/n of the prefixes.
 */
import { hash } from 'node:crypto';
import type { Provider } from '../providers/spec.js';
import type { BackendConfig } from '../config/schema.js';
import { CircuitBreaker } from './circuit.js';

export interface Backend {
  readonly id: string;
  readonly provider: Provider;
  readonly weight: number;
  readonly config: BackendConfig;
  /** Upstream model name sent to this backend. */
  readonly upstreamModel: string;
  inFlight: number;
  /** Active health: false while ejected by the health checker. */
  healthy: boolean;
  /** Why it is ejected (health check failures). */
  healthReason?: string;
  lastError?: string;
  lastErrorAt?: number;
  circuit: CircuitBreaker;
  /**
   * Until when (epoch ms) it cools down: it answered with a retry-after (429, 503), so it is
   * picked only when no other backend may take the request (0: not cooling).
   */
  coolingUntil: number;
  /** EWMA of attempt latency (ms). */
  ewmaMs?: number;
}

export type BalanceStrategy =
  'round_robin' | 'weighted_random' | 'least_in_flight' | 'latency' | 'prefix_affinity';

const VNODES = 64;

function hash32(s: string): number {
  return hash('md5', s, 'buffer').readUInt32BE(0);
}

export class Pool {
  readonly alias: string;
  readonly backends: readonly Backend[];
  readonly strategy: BalanceStrategy;
  /** Smooth weighted round-robin state. */
  #current: number[];
  /** Consistent-hash ring: sorted points -> backend index. */
  #ring: Array<{ point: number; index: number }> = [];

  constructor(alias: string, backends: Backend[], strategy: BalanceStrategy = 'round_robin') {
    if (backends.length === 0) throw new Error(`model ${alias} has no backends`);
    this.alias = alias;
    this.backends = backends;
    this.strategy = strategy;
    this.#current = backends.map(() => 0);
    if (strategy === 'prefix_affinity') {
      backends.forEach((b, index) => {
        const n = Math.max(1, Math.round(VNODES * (b.weight || 0)));
        for (let v = 0; v < n; v++) this.#ring.push({ point: hash32(`${b.id}#${v}`), index });
      });
      this.#ring.sort((a, b) => a.point - b.point);
    }
  }

  /**
   * Backends a request may go to now: circuit not open, not excluded; those not cooling down
   * first, then healthy ones first.
   */
  candidates(exclude?: ReadonlySet<string>, now = Date.now()): Backend[] {
    let usable = this.backends.filter((b) => b.weight > 0 && !exclude?.has(b.id) && b.circuit.allows(now));
    if (usable.some((b) => b.coolingUntil > now)) {
      const ready = usable.filter((b) => b.coolingUntil <= now);
      if (ready.length > 0) usable = ready;
    }
    const healthy = usable.filter((b) => b.healthy);
    return healthy.length > 0 ? healthy : usable;
  }

  /** Pick a backend (undefined when none may take the request). */
  pick(
    exclude?: ReadonlySet<string>,
    opts: { affinityKey?: string | undefined; random?: () => number } = {},
  ): Backend | undefined {
    const now = Date.now();
    if (this.backends.length === 1) {
      // One backend (the common pool): what candidates() would return, without its two arrays.
      // Health and cooling down do not matter here: the sole backend is still the one candidate.
      const only = this.backends[0] as Backend;
      if (only.weight <= 0 || exclude?.has(only.id) || !only.circuit.allows(now)) return undefined;
      only.circuit.acquire(now);
      return only;
    }
    const candidates = this.candidates(exclude, now);
    if (candidates.length === 0) return undefined;
    const chosen = candidates.length === 1 ? candidates[0] : this.#choose(candidates, opts);
    chosen?.circuit.acquire(now);
    return chosen;
  }

  #choose(
    c: Backend[],
    opts: { affinityKey?: string | undefined; random?: () => number },
  ): Backend | undefined {
    const random = opts.random ?? Math.random;
    switch (this.strategy) {
      case 'weighted_random': {
        const total = c.reduce((s, b) => s + b.weight, 0);
        let r = random() * total;
        for (const b of c) {
          r -= b.weight;
          if (r < 0) return b;
        }
        return c[c.length - 1];
      }
      case 'least_in_flight': {
        let best = c[0] as Backend;
        for (const b of c) if (b.inFlight / b.weight < best.inFlight / best.weight) best = b;
        return best;
      }
      case 'latency': {
        const a = c[Math.floor(random() * c.length)] as Backend;
        let b = c[Math.floor(random() * c.length)] as Backend;
        if (b === a) b = c[(c.indexOf(a) + 1) % c.length] as Backend;
        const cost = (x: Backend): number => (x.ewmaMs ?? 0) * (x.inFlight + 1) + x.inFlight;
        return cost(a) <= cost(b) ? a : b;
      }
      case 'prefix_affinity':
        if (opts.affinityKey !== undefined) return this.#ringPick(c, opts.affinityKey);
        return this.#smoothWeighted(c);
      default:
        return this.#smoothWeighted(c);
    }
  }

  #ringPick(c: Backend[], key: string): Backend | undefined {
    const allowed = new Set(c.map((b) => this.backends.indexOf(b)));
    const h = hash32(key);
    let lo = 0;
    let hi = this.#ring.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if ((this.#ring[mid] as { point: number }).point < h) lo = mid + 1;
      else hi = mid;
    }
    for (let i = 0; i < this.#ring.length; i++) {
      const node = this.#ring[(lo + i) % this.#ring.length] as { index: number };
      if (allowed.has(node.index)) return this.backends[node.index];
    }
    return c[0];
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

/** Record an attempt's latency into the backend's EWMA (alpha 0.3). */
export function observeLatency(b: Backend, ms: number): void {
  b.ewmaMs = b.ewmaMs === undefined ? ms : 0.3 * ms + 0.7 * b.ewmaMs;
}
