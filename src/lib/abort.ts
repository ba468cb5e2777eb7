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
