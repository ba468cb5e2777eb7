/** In-process invalidation bus: one replica, so publish = notify local subscribers. */
import type { InvalidationBus, InvalidationEvent } from '../ports.js';

export class MemoryInvalidationBus implements InvalidationBus {
  readonly #subs = new Set<(e: InvalidationEvent) => void>();
  #version = 0;

  async publish(e: InvalidationEvent): Promise<void> {
    this.#version++;
    for (const fn of this.#subs) fn(e);
  }

  subscribe(fn: (e: InvalidationEvent) => void): () => void {
    this.#subs.add(fn);
    return () => this.#subs.delete(fn);
  }

  async version(): Promise<number> {
    return this.#version;
  }

  async close(): Promise<void> {
    this.#subs.clear();
  }
}
