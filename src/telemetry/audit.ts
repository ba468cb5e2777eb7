/**
 * The audit log: one JSON line per finished request (time, request and correlation id, tenant,
 * key id, client IP, route, model, backend, status, latency, tokens, cost, cache), written in
 * batches off the request path to `<dir>/audit-YYYY-MM-DD.N.jsonl`. Files rotate at UTC midnight
 * and beyond `max_file_bytes`; files older than `retention_days` are deleted. Bodies (prompt and
 * answer) are stored only with `bodies: true`, and then PII-redacted; with bodies off no prompt
 * text is written anywhere.
 */
import { appendFile, mkdir, readdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { TelemetryConfig } from '../config/schema.js';
import type { RequestContext } from '../pipeline/context.js';
import type { Logger } from './logger.js';
import type { Redactor } from './redact.js';
import { recordFromContext, type StoredRecord } from './request-log.js';

type AuditConfig = TelemetryConfig['audit'];

const FILE_RE = /^audit-(\d{4}-\d{2}-\d{2})\.(\d+)\.jsonl$/;
const FLUSH_MS = 200;
const FLUSH_LINES = 512;
/** Lines kept in memory when the disk cannot keep up; beyond it lines are dropped and counted. */
const MAX_PENDING = 50_000;
/** Longest body kept (after redaction), in characters. */
const MAX_BODY_CHARS = 64 * 1024;

function utcDay(ms: number): string {
  return new Date(ms).toISOString().slice(0, 10);
}

/**
 * The record as one JSON line, `time` (ISO) and `client_ip` first, without `at` (the epoch ms that
 * `time` spells out): one serialisation of the record, no copy of it. `"at"` is found as the key it
 * is: a quote inside a JSON string is always escaped, so `,"at":` cannot occur in the values before it.
 */
export function auditLine(rec: StoredRecord, clientIp: string): string {
  const json = JSON.stringify(rec);
  const key = ',"at":';
  const at = json.indexOf(key);
  const end = at + key.length + String(rec.at).length;
  const body = at < 0 ? json.slice(1) : `${json.slice(1, at + 1)}${json.slice(end + 1)}`;
  return `{"time":"${new Date(rec.at).toISOString()}","client_ip":${JSON.stringify(clientIp)},${body}`;
}

export class AuditLog {
  readonly #cfg: AuditConfig;
  readonly #logger: Logger;
  readonly #redactor: Redactor;
  #pending: string[] = [];
  #timer: NodeJS.Timeout | undefined;
  #writing: Promise<void> = Promise.resolve();
  #day = '';
  #seq = 0;
  #bytes = 0;
  /** Settles (never rejects) once the directory was made and today's file picked, or that failed. */
  #ready: Promise<void>;
  /** Why the directory could not be set up; the next write tries again. */
  #initError: unknown = undefined;
  dropped = 0;

  constructor(cfg: AuditConfig, deps: { logger: Logger; redactor: Redactor }) {
    this.#cfg = cfg;
    this.#logger = deps.logger;
    this.#redactor = deps.redactor;
    this.#ready = this.#init().catch((err: unknown) => {
      this.#initError = err;
    });
  }

  /**
   * Start-up: resolves once the audit directory exists and today's file is picked; rejects with
   * the reason when it cannot be created or read (a path under a file, no permission, read-only).
   */
  async opened(): Promise<void> {
    await this.#ready;
    if (this.#initError !== undefined) throw this.#initError;
  }

  get bodies(): boolean {
    return this.#cfg.bodies;
  }

  async #init(): Promise<void> {
    await mkdir(this.#cfg.dir, { recursive: true });
    await this.#applyRetention();
    await this.#openFor(Date.now());
  }

  /** Pick today's newest file (continue it if it has room) or the next sequence number. */
  async #openFor(now: number): Promise<void> {
    const day = utcDay(now);
    let seq = 0;
    let bytes = 0;
    for (const f of await readdir(this.#cfg.dir)) {
      const m = FILE_RE.exec(f);
      if (!m || m[1] !== day) continue;
      const n = Number(m[2]);
      if (n >= seq) {
        seq = n;
        bytes = (await stat(join(this.#cfg.dir, f))).size;
      }
    }
    if (bytes >= this.#cfg.max_file_bytes) {
      seq++;
      bytes = 0;
    }
    this.#day = day;
    this.#seq = seq;
    this.#bytes = bytes;
  }

  async #applyRetention(): Promise<void> {
    const cutoff = utcDay(Date.now() - this.#cfg.retention_days * 86_400_000);
    for (const f of await readdir(this.#cfg.dir)) {
      const m = FILE_RE.exec(f);
      if (m && (m[1] as string) < cutoff) await rm(join(this.#cfg.dir, f), { force: true });
    }
  }

  get currentFile(): string {
    return join(this.#cfg.dir, `audit-${this.#day}.${this.#seq}.jsonl`);
  }

  /**
   * Finish hook: capture bodies (redacted) when configured, redact the error message (an upstream
   * error can quote the prompt), queue the record. Never throws. The first finish hook: the
   * console's request log shows the same redacted record.
   */
  record(ctx: RequestContext, status: number): void {
    if (ctx.error !== undefined) {
      const message = this.#redactor.redact(ctx.error.message);
      if (message !== ctx.error.message) ctx.error = { ...ctx.error, message };
    }
    if (this.#cfg.bodies) {
      const bodies: { request?: string; response?: string } = {};
      // String by string, not the JSON text: there a newline is `\n` and hides a number after it.
      if (ctx.auditRequest !== undefined)
        bodies.request = this.#redactor.redactJson(ctx.auditRequest).slice(0, MAX_BODY_CHARS);
      if (ctx.outputText !== undefined)
        bodies.response = this.#redactor.redact(ctx.outputText).slice(0, MAX_BODY_CHARS);
      ctx.auditBodies = bodies;
    }
    const now = Date.now();
    const line = auditLine(recordFromContext(ctx, status, now), ctx.clientIp);
    if (this.#pending.length >= MAX_PENDING) {
      this.dropped++;
      return;
    }
    this.#pending.push(line);
    if (this.#pending.length >= FLUSH_LINES) void this.flush();
    else this.#timer ??= setTimeout(() => void this.flush(), FLUSH_MS).unref();
  }

  /** Write everything queued so far. */
  flush(): Promise<void> {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    const lines = this.#pending;
    this.#pending = [];
    this.#writing = this.#writing.then(() => this.#write(lines));
    return this.#writing;
  }

  async #write(lines: string[]): Promise<void> {
    if (lines.length === 0) return;
    try {
      await this.#ready;
      if (this.#initError !== undefined) {
        await this.#init();
        this.#initError = undefined;
      }
      const now = Date.now();
      if (utcDay(now) !== this.#day) {
        await this.#openFor(now);
        await this.#applyRetention();
      } else if (this.#bytes >= this.#cfg.max_file_bytes) {
        this.#seq++;
        this.#bytes = 0;
        await this.#applyRetention();
      }
      const text = lines.join('\n') + '\n';
      try {
        await appendFile(this.currentFile, text);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
        // The directory was removed while serving (a clean-up job, a remount): make it again.
        this.#logger.warn({ dir: this.#cfg.dir }, 'audit directory was missing; created it again');
        await mkdir(this.#cfg.dir, { recursive: true });
        await this.#openFor(now);
        await appendFile(this.currentFile, text);
      }
      this.#bytes += Buffer.byteLength(text);
    } catch (err) {
      this.dropped += lines.length;
      this.#logger.error({ err, lines: lines.length }, 'audit log write failed; records dropped');
    }
  }

  async close(): Promise<void> {
    await this.flush();
  }
}
