/** The CLI's admin commands talk to a running gateway's admin API (so every replica sees the change). */
import { gatewayUrl, UsageError, type CliIO } from './common.js';

export interface AdminTarget {
  url: string;
  token: string;
}

/** The options every admin command takes (declared in program.ts). */
export interface AdminOptions {
  url?: string;
  adminToken?: string;
}

const DEFAULT_URL = 'http://127.0.0.1:8080';

export function adminTarget(values: AdminOptions, io: CliIO): AdminTarget {
  const token = values.adminToken || io.env.PORTICO_ADMIN_TOKEN;
  if (!token) throw new UsageError('the admin token is needed: --admin-token TOKEN or PORTICO_ADMIN_TOKEN');
  const url =
    values.url !== undefined
      ? gatewayUrl('--url', values.url)
      : gatewayUrl('PORTICO_URL', io.env.PORTICO_URL || DEFAULT_URL);
  return { url, token };
}

export class AdminApiError extends Error {
  override name = 'AdminApiError';
  constructor(
    message: string,
    /** HTTP status of the admin API's answer; undefined when it could not be reached. */
    readonly status?: number,
  ) {
    super(message);
  }
}

export async function adminRequest<T>(
  t: AdminTarget,
  method: string,
  path: string,
  body?: unknown,
): Promise<T> {
  let res: Response;
  try {
    res = await fetch(`${t.url}${path}`, {
      method,
      headers: {
        authorization: `Bearer ${t.token}`,
        ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
      },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
      signal: AbortSignal.timeout(30_000),
    });
  } catch (err) {
    throw new AdminApiError(
      `cannot reach the gateway at ${t.url}: ${(err as Error).message} (start it, or pass --url)`,
    );
  }
  const text = await res.text();
  const where = `${method} ${t.url}${path}`;
  let json: unknown;
  try {
    json = text ? (JSON.parse(text) as unknown) : undefined;
  } catch {
    // Not the admin API's answer: a proxy's error page (an HTML 502), a login page, another server.
    throw new AdminApiError(
      `${where}: HTTP ${statusLine(res)}, not the admin API's JSON (content-type ${res.headers.get('content-type') ?? 'none'}): ${bodyStart(text)}. Is something in front of the gateway (a proxy, a load balancer) failing, or does --url point elsewhere?`,
      res.status,
    );
  }
  if (!res.ok) {
    const msg = (json as { error?: { message?: string } } | undefined)?.error?.message;
    if (msg !== undefined) throw new AdminApiError(`${where}: HTTP ${res.status}: ${msg}`, res.status);
    throw new AdminApiError(
      `${where}: HTTP ${statusLine(res)}, ${text ? `not an admin API error: ${bodyStart(text)}` : 'with an empty body'}`,
      res.status,
    );
  }
  return json as T;
}

/** `502 Bad Gateway` (the status text when there is one). */
function statusLine(res: Response): string {
  return res.statusText ? `${res.status} ${res.statusText}` : String(res.status);
}

/** The start of a body, on one line, quoted; cut at 200 characters with its full size. */
function bodyStart(text: string): string {
  const flat = text.replace(/\s+/g, ' ').trim();
  return flat.length <= 200
    ? JSON.stringify(flat)
    : `${JSON.stringify(flat.slice(0, 200))}… (${Buffer.byteLength(text)} bytes)`;
}

/** Render rows as an aligned text table. */
export function table(rows: Array<Record<string, unknown>>, columns: string[]): string {
  const cell = (v: unknown): string =>
    v === null || v === undefined ? '' : typeof v === 'object' ? JSON.stringify(v) : String(v);
  const widths = columns.map((c) => Math.max(c.length, ...rows.map((r) => cell(r[c]).length)));
  const line = (vals: string[]) =>
    vals
      .map((v, i) => v.padEnd(widths[i] as number))
      .join('  ')
      .trimEnd();
  return [
    line(columns),
    line(widths.map((w) => '-'.repeat(w))),
    ...rows.map((r) => line(columns.map((c) => cell(r[c])))),
  ].join('\n');
}

export function csv(rows: Array<Record<string, unknown>>, columns: string[]): string {
  const esc = (v: unknown): string => {
    const s = v === null || v === undefined ? '' : String(v);
    return /[",\n]/.test(s) ? `"${s.replaceAll('"', '""')}"` : s;
  };
  return [columns.join(','), ...rows.map((r) => columns.map((c) => esc(r[c])).join(','))].join('\n');
}
