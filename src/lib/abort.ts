import { setTimeout as sleepTimer } from 'node:timers/promises';

/** Sleep that rejects with the signal's reason when aborted. Zero or negative ms resolves at once. */
export async function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  if (ms <= 0) {
    signal?.throwIfAborted();
    return;
  }
  await sleepTimer(ms, undefined, signal ? { signal } : undefined);
}

export function isAbortError(e: unknown): boolean {
  return e instanceof Error && (e.name === 'AbortError' || e.name === 'TimeoutError');
}

/** What can be cancelled, as a reader needs it: without building an AbortSignal. */
export interface Cancellable {
  readonly aborted: boolean;
  /** Why it was cancelled (an AbortError DOMException when no reason was given). */
  readonly reason: unknown;
  /** Call `cb` once when it is cancelled (not if it already is); returns the un-registration. */
  onAbort(cb: () => void): () => void;
}

/**
 * An AbortController made only when its `signal` is asked for. Every request has one, and most
 * finish without anyone needing an AbortSignal (a non-streaming answer registers a plain callback
 * through `onAbort`): building the controller, its signal and their listener lists per request was
 * ~3% of the gateway's CPU (`--cpu-prof`, bench/pipeline-report.md). Aborting before the signal
 * exists makes it already aborted, with the same reason.
 */
export class Cancel implements Cancellable {
  #controller: AbortController | undefined = undefined;
  #aborted = false;
  #reason: unknown = undefined;
  #callbacks: Array<() => void> | undefined = undefined;

  get signal(): AbortSignal {
    if (!this.#controller) {
      this.#controller = new AbortController();
      if (this.#aborted) this.#controller.abort(this.#reason);
    }
    return this.#controller.signal;
  }

  get aborted(): boolean {
    return this.#aborted;
  }

  get reason(): unknown {
    return this.#reason;
  }

  abort(reason?: unknown): void {
    if (this.#aborted) return;
    this.#aborted = true;
    this.#reason =
      reason === undefined ? new DOMException('This operation was aborted', 'AbortError') : reason;
    this.#controller?.abort(this.#reason);
    const callbacks = this.#callbacks;
    this.#callbacks = undefined;
    if (callbacks) for (const cb of callbacks) cb();
  }

  onAbort(cb: () => void): () => void {
    if (this.#aborted) return noop;
    (this.#callbacks ??= []).push(cb);
    return () => {
      const list = this.#callbacks;
      const i = list ? list.indexOf(cb) : -1;
      if (list && i >= 0) list.splice(i, 1);
    };
  }
}

function noop(): void {}

/** A signal seen as a Cancellable (callers that only have an AbortSignal). */
export function cancellableOf(signal: AbortSignal): Cancellable {
  return {
    get aborted() {
      return signal.aborted;
    },
    get reason() {
      return signal.reason as unknown;
    },
    onAbort(cb: () => void): () => void {
      if (signal.aborted) return noop;
      signal.addEventListener('abort', cb, { once: true });
      return () => signal.removeEventListener('abort', cb);
    },
  };
}
