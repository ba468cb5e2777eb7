/**
 * The quota reservations this replica holds, and their lease. Every reservation records its owner
 * (this replica) and lives one lease (admission.reservation_lease_ms, 15 s by default) unless
 * renewed; one timer renews all of them every third of a lease, in one store call (per tenant in
 * Redis). So the holds of a replica that dies — kill -9, OOM, a lost node — come back within one
 * lease, instead of locking its tenants out for as long as a request may run. A hold that lapses
 * under a live request (the store unreachable, or this process stalled, past the lease) is held
 * again at the next renewal (#holdAgain).
 */
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import type { QuotaReservation, QuotaStore } from '../state/index.js';
import type { Logger } from '../telemetry/logger.js';

export const DEFAULT_RESERVATION_LEASE_MS = 15_000;

export class ReservationLeases {
  /** This replica, as recorded in its reservations: host, pid and a random part (pids repeat). */
  readonly owner: string;
  readonly #quotas: QuotaStore;
  readonly #logger: Logger;
  readonly #held = new Map<string, QuotaReservation>();
  readonly #onLapsed: ((tenant: string) => void) | undefined;
  #leaseMs: number;
  #timer: NodeJS.Timeout | undefined;
  #failing = false;
  #closed = false;

  /** `onLapsed`: a hold that lapsed while its request ran was held again (a metric). */
  constructor(
    quotas: QuotaStore,
    logger: Logger,
    leaseMs = DEFAULT_RESERVATION_LEASE_MS,
    hooks: { onLapsed?: (tenant: string) => void } = {},
  ) {
    this.#quotas = quotas;
    this.#logger = logger;
    this.#leaseMs = leaseMs;
    this.#onLapsed = hooks.onLapsed;
    this.owner = `${hostname()}:${process.pid}:${randomBytes(4).toString('hex')}`;
  }

  get leaseMs(): number {
    return this.#leaseMs;
  }

  /** How many reservations this replica holds now. */
  get size(): number {
    return this.#held.size;
  }

  /** A new lease length (config reload); the renewal timer follows. */
  configure(leaseMs: number): void {
    if (leaseMs === this.#leaseMs) return;
    this.#leaseMs = leaseMs;
    if (this.#timer) {
      clearInterval(this.#timer);
      this.#timer = undefined;
      this.#start();
    }
  }

  add(r: QuotaReservation): void {
    if (this.#closed) return;
    this.#held.set(r.id, r);
    this.#start();
  }

  /**
   * The timer is not stopped here when the last hold goes: at low concurrency that happens after
   * every request, and a timer made and cleared per request costs more than a tick that finds
   * nothing; the first tick with nothing held stops it (renewAll).
   */
  delete(r: QuotaReservation): void {
    this.#held.delete(r.id);
  }

  /** Extend every held reservation's lease now (the timer calls this every third of a lease). */
  async renewAll(): Promise<void> {
    if (this.#held.size === 0) {
      if (this.#timer) clearInterval(this.#timer);
      this.#timer = undefined;
      return;
    }
    try {
      const asked = [...this.#held.values()];
      const renewed = await this.#quotas.renew(asked, this.#leaseMs);
      if (renewed < countLive(asked)) await this.#holdAgain(asked);
      if (this.#failing)
        this.#logger.info({ held: this.#held.size }, 'quota reservation leases renewed again');
      this.#failing = false;
    } catch (err) {
      // Logged once per outage: the holds lapse after one lease, the requests still settle.
      if (!this.#failing)
        this.#logger.warn(
          { err, held: this.#held.size },
          'renewing quota reservation leases failed; they lapse if this lasts a whole lease',
        );
      this.#failing = true;
    }
  }

  /**
   * Some of the holds asked for were not renewed: their lease lapsed while their requests run (the
   * store unreachable, or this process stalled, for longer than a lease), and the store gave them
   * back to the budget, where other requests could reserve them a second time. Hold them again,
   * over the quota if need be (their requests run, and their commits count their usage anyway);
   * not those whose request finished meanwhile. Counted per hold, logged once per renewal.
   */
  async #holdAgain(asked: readonly QuotaReservation[]): Promise<void> {
    const running = new Map<string, QuotaReservation>();
    for (const r of asked) if (!r.degraded && this.#held.has(r.id)) running.set(r.id, r);
    if (running.size === 0) return;
    const again = await this.#quotas.rehold([...running.values()], this.#leaseMs);
    if (again.length === 0) return;
    const tenants = new Set<string>();
    for (const id of again) {
      const tenant = running.get(id)?.tenant;
      if (tenant === undefined) continue;
      tenants.add(tenant);
      this.#onLapsed?.(tenant);
    }
    this.#logger.warn(
      { held: again.length, tenants: [...tenants] },
      'quota reservations lapsed while their requests ran (the quota store was unreachable, or this process stalled, for longer than the lease); they are held again, over the quota if need be',
    );
  }

  #start(): void {
    if (this.#timer || this.#closed) return;
    this.#timer = setInterval(() => void this.renewAll(), Math.max(100, Math.floor(this.#leaseMs / 3)));
    this.#timer.unref();
  }

  close(): void {
    this.#closed = true;
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
    this.#held.clear();
  }
}

/** How many of these a store renews when they are held: all but the degraded (never written). */
function countLive(rs: readonly QuotaReservation[]): number {
  let n = 0;
  for (const r of rs) if (!r.degraded) n++;
  return n;
}
