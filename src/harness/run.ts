/**
 * The load loop: N workers pull the next record (cycling through the promptset) until the count is
 * reached OR the duration is over OR the run is aborted — every run is bounded by both.
 */
import { performance } from 'node:perf_hooks';
import { Agent } from 'undici';
import { compileExpectation, type Check } from '../promptset/checks.js';
import type { PromptRecord } from '../promptset/types.js';
import { judgeAnswer, sendRecord } from './client.js';
import { Progress, type ProgressSink } from './progress.js';
import type { Outcome, Target } from './types.js';

/** Upper bounds used when the caller gives only one of count / duration. */
export const MAX_COUNT = 10_000_000;
export const MAX_DURATION_MS = 3_600_000;

export interface RunOptions {
  records: PromptRecord[];
  baseUrl: string;
  key?: string;
  target: Target;
  concurrency: number;
  /** Requests to send; default: one pass over the promptset when no duration is given. */
  count?: number;
  durationMs?: number;
  stream?: boolean;
  timeoutMs?: number;
  judgeModel?: string;
  signal?: AbortSignal;
  /** Where progress goes (default stderr); `showProgress: false` silences it. */
  progress?: ProgressSink;
  showProgress?: boolean;
  runId: string;
}

export interface RunResult {
  outcomes: Outcome[];
  startedAt: Date;
  finishedAt: Date;
  wallMs: number;
  plannedCount: number | null;
  durationMs: number;
}

export async function runBench(opts: RunOptions): Promise<RunResult> {
  if (opts.records.length === 0) throw new Error('the promptset is empty');
  if (!Number.isInteger(opts.concurrency) || opts.concurrency < 1)
    throw new Error('concurrency must be a positive integer');
  const countGiven = opts.count !== undefined;
  const plannedCount = countGiven
    ? (opts.count as number)
    : opts.durationMs === undefined
      ? opts.records.length
      : null;
  const maxCount = Math.min(plannedCount ?? MAX_COUNT, MAX_COUNT);
  const durationMs = Math.min(opts.durationMs ?? MAX_DURATION_MS, MAX_DURATION_MS);
  const timeoutMs = opts.timeoutMs ?? 60_000;
  const checks: Check[] = opts.records.map((r) => compileExpectation(r.expect));
  const dispatcher = new Agent({ connections: opts.concurrency, keepAliveTimeout: 10_000 });
  const progress = new Progress(opts.progress ?? process.stderr, opts.showProgress !== false);
  const startedAt = new Date();
  const t0 = performance.now();
  const outcomes: Outcome[] = [];
  let issued = 0;
  let inFlight = 0;
  let passed = 0;
  let checkFailed = 0;
  let errors = 0;
  const snapshot = () => ({
    done: outcomes.length,
    passed,
    checkFailed,
    errors,
    inFlight,
    elapsedMs: performance.now() - t0,
    total: plannedCount,
    durationMs: opts.durationMs ?? 0,
  });
  const ticker = setInterval(() => progress.update(snapshot()), 250);
  ticker.unref();

  const aborted = (): boolean => opts.signal?.aborted === true;
  const worker = async (): Promise<void> => {
    while (issued < maxCount && performance.now() - t0 < durationMs && !aborted()) {
      const seq = issued++;
      const idx = seq % opts.records.length;
      const rec = opts.records[idx] as PromptRecord;
      inFlight++;
      const sendOpts = {
        baseUrl: opts.baseUrl,
        key: opts.key,
        timeoutMs,
        dispatcher,
        headers: { 'x-correlation-id': `${opts.runId}-${seq}` },
        ...(opts.signal ? { signal: opts.signal } : {}),
      };
      const r = await sendRecord(rec, { ...sendOpts, target: opts.target, stream: opts.stream === true });
      if (r.error_class !== null && aborted()) {
        // Cancelled by the caller (Ctrl-C): not a failure of the target, so not recorded.
        inFlight--;
        break;
      }
      let error_class = r.error_class as Outcome['error_class'];
      let reason = r.reason;
      if (error_class === null) {
        const failed = (checks[idx] as Check)(r.text);
        if (failed !== null) {
          error_class = 'check_failed';
          reason = failed;
        }
      }
      let judge_score: number | null = null;
      if (opts.judgeModel !== undefined && r.error_class === null) {
        judge_score = await judgeAnswer(rec, r.text, { ...sendOpts, judgeModel: opts.judgeModel });
      }
      inFlight--;
      const ok = error_class === null;
      if (ok) passed++;
      else if (error_class === 'check_failed') checkFailed++;
      else errors++;
      outcomes.push({
        seq,
        id: rec.id,
        category: rec.category,
        status: r.status,
        passed: ok,
        error_class,
        reason,
        latency_ms: r.latency_ms,
        ttft_ms: r.ttft_ms,
        prompt_tokens: r.prompt_tokens,
        completion_tokens: r.completion_tokens,
        judge_score,
      });
      progress.update(snapshot());
    }
  };

  try {
    await Promise.all(Array.from({ length: opts.concurrency }, () => worker()));
  } finally {
    clearInterval(ticker);
    await dispatcher.close();
  }
  const wallMs = performance.now() - t0;
  progress.finish(snapshot());
  outcomes.sort((a, b) => a.seq - b.seq);
  return { outcomes, startedAt, finishedAt: new Date(), wallMs, plannedCount, durationMs };
}
