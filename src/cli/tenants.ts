/**
 * `portico tenants add|list`, `portico keys create|list|revoke`, `portico usage report`: through the
 * admin API of a running gateway (so every replica sees the change). Options are declared in
 * program.ts.
 */
import { readFile } from 'node:fs/promises';
import { AdminApiError, adminRequest, adminTarget, csv, table, type AdminOptions } from './admin-client.js';
import { UsageError, type CliIO } from './common.js';

export interface TenantAddOptions extends AdminOptions {
  name?: string;
  company?: string;
  industry?: string;
  prompt?: string;
  promptFile?: string;
  policy?: string;
  models?: string;
  rps?: number;
  burst?: number;
  tokensPerMinute?: number;
  maxInFlight?: number;
  dailyTokens?: number;
  monthlyTokens?: number;
  dailyRequests?: number;
  monthlyRequests?: number;
  priority?: string;
  json?: boolean;
}

/** Drop the undefined fields of an object (the API rejects explicit nulls for absent limits). */
function defined(o: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined));
}

export async function tenantsAdd(id: string, o: TenantAddOptions, io: CliIO): Promise<number> {
  if (o.prompt !== undefined && o.promptFile !== undefined)
    throw new UsageError('give --prompt or --prompt-file, not both');
  const target = adminTarget(o, io);
  let prompt = o.prompt;
  if (o.promptFile !== undefined) {
    try {
      prompt = await readFile(o.promptFile, 'utf8');
    } catch (err) {
      throw new UsageError(`--prompt-file ${o.promptFile}: cannot read it (${(err as Error).message})`);
    }
  }
  const limits = defined({
    requests_per_second: o.rps,
    burst: o.burst,
    tokens_per_minute: o.tokensPerMinute,
    max_in_flight: o.maxInFlight,
  });
  const quota = defined({
    daily_tokens: o.dailyTokens,
    monthly_tokens: o.monthlyTokens,
    daily_requests: o.dailyRequests,
    monthly_requests: o.monthlyRequests,
  });
  const body = {
    id,
    ...defined({
      display_name: o.name,
      company: o.company,
      industry: o.industry,
      system_prompt: prompt?.trim(),
      prompt_policy: o.policy,
      priority: o.priority,
    }),
    ...(o.models
      ? {
          allowed_models: o.models
            .split(',')
            .map((s) => s.trim())
            .filter(Boolean),
        }
      : {}),
    ...(Object.keys(limits).length ? { limits } : {}),
    ...(Object.keys(quota).length ? { quota } : {}),
  };
  const r = await adminRequest<Record<string, unknown>>(target, 'POST', '/admin/tenants', body);
  io.out(o.json ? JSON.stringify(r, null, 2) : `created tenant ${String(r.id)}`);
  return 0;
}

export async function tenantsList(o: AdminOptions & { json?: boolean }, io: CliIO): Promise<number> {
  const target = adminTarget(o, io);
  const r = await adminRequest<{ data: Array<Record<string, unknown>> }>(target, 'GET', '/admin/tenants');
  io.out(
    o.json
      ? JSON.stringify(r.data, null, 2)
      : table(r.data, ['id', 'display_name', 'company', 'source', 'priority', 'allowed_models']),
  );
  return 0;
}

export async function keysCreate(
  o: AdminOptions & { tenant: string; label?: string; expires?: string; json?: boolean },
  io: CliIO,
): Promise<number> {
  const expires = o.expires === undefined ? undefined : expiresAt(o.expires);
  const target = adminTarget(o, io);
  const r = await adminRequest<Record<string, unknown>>(
    target,
    'POST',
    `/admin/tenants/${encodeURIComponent(o.tenant)}/keys`,
    defined({ label: o.label, expires_at: expires }),
  );
  if (o.json) io.out(JSON.stringify(r, null, 2));
  else {
    io.out(String(r.key));
    io.err(`key ${String(r.id)} for tenant ${o.tenant}: store it now, it is shown only once.`);
  }
  return 0;
}

export async function keysList(
  o: AdminOptions & { tenant?: string; json?: boolean },
  io: CliIO,
): Promise<number> {
  const target = adminTarget(o, io);
  const path = o.tenant ? `/admin/tenants/${encodeURIComponent(o.tenant)}/keys` : '/admin/keys';
  const r = await adminRequest<{ data: Array<Record<string, unknown>> }>(target, 'GET', path);
  if (o.json) {
    io.out(JSON.stringify(r.data, null, 2));
    return 0;
  }
  io.out(
    table(r.data, ['id', 'tenant_id', 'label', 'prefix', 'source', 'expires_at', 'revoked_at', 'created_at']),
  );
  if (r.data.some((k) => k.source === 'config'))
    io.out(
      '\nsource=config: declared in the config file; not revocable from the API (remove it from the file, which is reloaded).',
    );
  return 0;
}

export async function keysRevoke(
  id: string,
  o: AdminOptions & { json?: boolean },
  io: CliIO,
): Promise<number> {
  const target = adminTarget(o, io);
  const r = await adminRequest<Record<string, unknown>>(
    target,
    'POST',
    `/admin/keys/${encodeURIComponent(id)}/revoke`,
  );
  io.out(o.json ? JSON.stringify(r, null, 2) : `revoked ${String(r.id)} at ${String(r.revoked_at)}`);
  return 0;
}

/**
 * `keys create --expires`: a date YYYY-MM-DD means 00:00 UTC that day (the key works through the
 * day before); an ISO 8601 time needs Z or an offset (the API's expires_at).
 */
export function expiresAt(v: string): string {
  if (/^\d{4}-\d{2}-\d{2}$/.test(v)) {
    checkDate('--expires', v);
    return `${v}T00:00:00Z`;
  }
  if (/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/.test(v)) return v;
  throw new UsageError(
    `--expires ${v}: use a date YYYY-MM-DD (the key stops working at 00:00 UTC that day) or an ISO 8601 time with Z or an offset, e.g. 2027-01-01T00:00:00Z`,
  );
}

/** Validate a YYYY-MM or YYYY-MM-DD the way a person wrote it. */
export function checkDate(flag: string, v: string, monthOnly = false): void {
  const m = /^(\d{4})-(\d{2})(?:-(\d{2}))?$/.exec(v);
  const shape = monthOnly ? 'YYYY-MM, e.g. 2026-11' : 'YYYY-MM-DD or YYYY-MM, e.g. 2026-11-22';
  if (!m || (monthOnly && m[3] !== undefined)) throw new UsageError(`${flag} ${v}: use ${shape}`);
  const month = Number(m[2]);
  if (month < 1 || month > 12)
    throw new UsageError(`${flag} ${v}: there is no month ${m[2]} (months are 01 to 12); use ${shape}`);
  if (m[3] !== undefined) {
    const day = Number(m[3]);
    const days = new Date(Date.UTC(Number(m[1]), month, 0)).getUTCDate();
    if (day < 1 || day > days)
      throw new UsageError(`${flag} ${v}: ${m[1]}-${m[2]} has no day ${m[3]} (it has ${days} days)`);
  }
}

/** The first ms of a YYYY-MM or YYYY-MM-DD (checked by checkDate), and the first ms after it. */
function dateSpan(v: string): { start: number; end: number } {
  const [y, m, d] = v.split('-').map(Number);
  const start = Date.UTC(y ?? 1970, (m ?? 1) - 1, d ?? 1);
  const end = d === undefined ? Date.UTC(y ?? 1970, m ?? 1, 1) : start + 86_400_000;
  return { start, end };
}

/** --from after --to: a usage error in the user's words (the API refuses it too, with a 400). */
export function checkRange(from: string | undefined, to: string | undefined): void {
  if (from === undefined || to === undefined) return;
  if (dateSpan(from).start >= dateSpan(to).end)
    throw new UsageError(
      `--from ${from} is after --to ${to}: give a --from on or before the --to (--to includes all of its day or month)`,
    );
}

/** Sum without binary floating-point noise (0.0001 + 0.00005915 prints 0.00015915). */
export function exactSum(values: number[]): number {
  return Number(values.reduce((a, b) => a + b, 0).toPrecision(12));
}

export interface UsageReportOptions extends AdminOptions {
  tenant?: string;
  month?: string;
  from?: string;
  to?: string;
  groupBy: string;
  format: string;
}

export async function usageReport(o: UsageReportOptions, io: CliIO): Promise<number> {
  if (o.month !== undefined) checkDate('--month', o.month, true);
  if (o.month !== undefined && (o.from !== undefined || o.to !== undefined))
    throw new UsageError('give --month, or --from/--to, not both');
  if (o.from !== undefined) checkDate('--from', o.from);
  if (o.to !== undefined) checkDate('--to', o.to);
  checkRange(o.from, o.to);
  const target = adminTarget(o, io);
  const q = new URLSearchParams();
  if (o.tenant) q.set('tenant', o.tenant);
  if (o.month) {
    q.set('from', o.month);
    q.set('to', o.month);
  }
  if (o.from) q.set('from', o.from);
  if (o.to) q.set('to', o.to);
  q.set('group_by', o.groupBy);
  let r: { data: Array<Record<string, unknown>> };
  try {
    // An unknown tenant is a 404; a deleted one whose usage the ledger keeps is reported.
    r = await adminRequest<{ data: Array<Record<string, unknown>> }>(
      target,
      'GET',
      `/admin/usage?${q.toString()}`,
    );
  } catch (err) {
    if (o.tenant !== undefined && err instanceof AdminApiError && err.status === 404) {
      io.err(`portico: no tenant "${o.tenant}" at ${target.url} (see: portico tenants list)`);
      return 1;
    }
    throw err;
  }
  const cols = ['tenant', 'group', 'requests', 'tokens_in', 'tokens_out', 'cost_usd', 'estimated', 'partial'];
  if (o.format === 'json') io.out(JSON.stringify(r.data, null, 2));
  else if (o.format === 'csv') io.out(csv(r.data, cols));
  else {
    const total: Record<string, number> = {};
    for (const c of ['requests', 'tokens_in', 'tokens_out', 'cost_usd', 'estimated', 'partial'])
      total[c] = exactSum(r.data.map((row) => Number(row[c] ?? 0)));
    io.out(table([...r.data, { tenant: 'TOTAL', group: '', ...total }], cols));
    if (r.data.length === 0) io.out('(no usage recorded in this period)');
  }
  return 0;
}
