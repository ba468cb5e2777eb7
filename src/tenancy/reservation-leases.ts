/**
 * The quota reservations this replica holds, and their lease. Every reservation records its owner
 * (this replica) and lives one lease (admission.reservation_lease_ms, 15 s by default) unless
 * renewed; one timer renews all of them every third of a lease, in one store call (per tenant in
 * Redis). So the holds of a replica that dies — kill -9, OOM, a lost node — come back within one
 * lease, instead of locking its tenants out for as long as a request may run.
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
  #leaseMs: number;
  #timer: NodeJS.Timeout | undefined;
  #failing = false;
  #closed = false;

  constructor(quotas: QuotaStore, logger: Logger, leaseMs = DEFAULT_RESERVATION_LEASE_MS) {
    this.#quotas = quotas;
    this.#logger = logger;
    this.#leaseMs = leaseMs;
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
      await this.#quotas.renew([...this.#held.values()], this.#leaseMs);
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
