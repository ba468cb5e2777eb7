/**
 * `portico tenants add ID [--name N] [--company C] [--industry I] [--prompt TEXT | --prompt-file F]
 *                        [--models a,b] [--rps N --burst N] [--daily-tokens N] [--monthly-tokens N]`
 * `portico tenants list`
 * `portico keys create --tenant ID [--label L] [--expires ISO]` / `keys list [--tenant ID]` / `keys revoke KEY_ID`
 * `portico usage report --tenant ID [--month 2026-11] [--group-by day|model|key] [--format table|csv|json]`
 * All through the admin API of a running gateway (--url, --admin-token / PORTICO_ADMIN_TOKEN).
 */
import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { ADMIN_OPTIONS, adminRequest, adminTarget, csv, table } from './admin-client.js';
import { UsageError, type CliIO } from './common.js';

function positiveInt(v: string | undefined, flag: string): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0) throw new UsageError(`${flag} must be a positive number, got "${v}"`);
  return n;
}

export async function runTenantsCommand(argv: string[], io: CliIO): Promise<number> {
  const [sub, ...rest] = argv;
  const { values, positionals } = parseArgs({
    args: rest,
    allowPositionals: true,
    options: {
      ...ADMIN_OPTIONS,
      name: { type: 'string' },
      company: { type: 'string' },
      industry: { type: 'string' },
      prompt: { type: 'string' },
      'prompt-file': { type: 'string' },
      policy: { type: 'string' },
      models: { type: 'string' },
      rps: { type: 'string' },
      burst: { type: 'string' },
      'tokens-per-minute': { type: 'string' },
      'max-in-flight': { type: 'string' },
      'daily-tokens': { type: 'string' },
      'monthly-tokens': { type: 'string' },
      'daily-requests': { type: 'string' },
      'monthly-requests': { type: 'string' },
      priority: { type: 'string' },
      json: { type: 'boolean' },
    },
  });
  const target = adminTarget(values, io);
  if (sub === 'list') {
    const r = await adminRequest<{ data: Array<Record<string, unknown>> }>(target, 'GET', '/admin/tenants');
    io.out(
      values.json
        ? JSON.stringify(r.data, null, 2)
        : table(r.data, ['id', 'display_name', 'company', 'source', 'priority', 'allowed_models']),
    );
    return 0;
  }
  if (sub === 'add') {
    const id = positionals[0];
    if (!id)
      throw new UsageError('usage: portico tenants add ID [--name N] [--prompt TEXT | --prompt-file F] ...');
    const prompt = values['prompt-file'] ? await readFile(values['prompt-file'], 'utf8') : values.prompt;
    const limits = {
      ...(values.rps ? { requests_per_second: positiveInt(values.rps, '--rps') } : {}),
      ...(values.burst ? { burst: positiveInt(values.burst, '--burst') } : {}),
      ...(values['tokens-per-minute']
        ? { tokens_per_minute: positiveInt(values['tokens-per-minute'], '--tokens-per-minute') }
        : {}),
      ...(values['max-in-flight']
        ? { max_in_flight: positiveInt(values['max-in-flight'], '--max-in-flight') }
        : {}),
    };
    const quota = {
      ...(values['daily-tokens']
        ? { daily_tokens: positiveInt(values['daily-tokens'], '--daily-tokens') }
        : {}),
      ...(values['monthly-tokens']
        ? { monthly_tokens: positiveInt(values['monthly-tokens'], '--monthly-tokens') }
        : {}),
      ...(values['daily-requests']
        ? { daily_requests: positiveInt(values['daily-requests'], '--daily-requests') }
        : {}),
      ...(values['monthly-requests']
        ? { monthly_requests: positiveInt(values['monthly-requests'], '--monthly-requests') }
        : {}),
    };
    const body = {
      id,
      ...(values.name ? { display_name: values.name } : {}),
      ...(values.company ? { company: values.company } : {}),
      ...(values.industry ? { industry: values.industry } : {}),
      ...(prompt !== undefined ? { system_prompt: prompt.trim() } : {}),
      ...(values.policy ? { prompt_policy: values.policy } : {}),
      ...(values.models
        ? {
            allowed_models: values.models
              .split(',')
              .map((s) => s.trim())
              .filter(Boolean),
          }
        : {}),
      ...(Object.keys(limits).length ? { limits } : {}),
      ...(Object.keys(quota).length ? { quota } : {}),
      ...(values.priority ? { priority: values.priority } : {}),
    };
    const r = await adminRequest<Record<string, unknown>>(target, 'POST', '/admin/tenants', body);
    io.out(values.json ? JSON.stringify(r, null, 2) : `created tenant ${String(r.id)}`);
    return 0;
  }
  throw new UsageError('usage: portico tenants add|list [options] (see portico --help)');
}

export async function runKeysCommand(argv: string[], io: CliIO): Promise<number> {
  const [sub, ...rest] = argv;
  const { values, positionals } = parseArgs({
    args: rest,
    allowPositionals: true,
    options: {
      ...ADMIN_OPTIONS,
      tenant: { type: 'string' },
      label: { type: 'string' },
      expires: { type: 'string' },
      json: { type: 'boolean' },
    },
  });
  const target = adminTarget(values, io);
  if (sub === 'create') {
    if (!values.tenant)
      throw new UsageError(
        'usage: portico keys create --tenant ID [--label L] [--expires 2027-01-01T00:00:00Z]',
      );
    const r = await adminRequest<Record<string, unknown>>(
      target,
      'POST',
      `/admin/tenants/${encodeURIComponent(values.tenant)}/keys`,
      {
        ...(values.label ? { label: values.label } : {}),
        ...(values.expires ? { expires_at: values.expires } : {}),
      },
    );
    if (values.json) io.out(JSON.stringify(r, null, 2));
    else {
      io.out(String(r.key));
      io.err(`key ${String(r.id)} for tenant ${values.tenant}: store it now, it is shown only once.`);
    }
    return 0;
  }
  if (sub === 'list') {
    const path = values.tenant ? `/admin/tenants/${encodeURIComponent(values.tenant)}/keys` : '/admin/keys';
    const r = await adminRequest<{ data: Array<Record<string, unknown>> }>(target, 'GET', path);
    io.out(
      values.json
        ? JSON.stringify(r.data, null, 2)
        : table(r.data, [
            'id',
            'tenant_id',
            'label',
            'prefix',
            'source',
            'expires_at',
            'revoked_at',
            'created_at',
          ]),
    );
    return 0;
  }
  if (sub === 'revoke') {
    const id = positionals[0];
    if (!id) throw new UsageError('usage: portico keys revoke KEY_ID');
    const r = await adminRequest<Record<string, unknown>>(
      target,
      'POST',
      `/admin/keys/${encodeURIComponent(id)}/revoke`,
    );
    io.out(values.json ? JSON.stringify(r, null, 2) : `revoked ${String(r.id)} at ${String(r.revoked_at)}`);
    return 0;
  }
  throw new UsageError('usage: portico keys create|list|revoke [options]');
}

export async function runUsageCommand(argv: string[], io: CliIO): Promise<number> {
  const [sub, ...rest] = argv;
  const { values } = parseArgs({
    args: rest,
    options: {
      ...ADMIN_OPTIONS,
      tenant: { type: 'string' },
      month: { type: 'string' },
      from: { type: 'string' },
      to: { type: 'string' },
      'group-by': { type: 'string' },
      format: { type: 'string' },
    },
  });
  if (sub !== 'report')
    throw new UsageError(
      'usage: portico usage report --tenant ID [--month 2026-11] [--group-by day|month|model|key] [--format table|csv|json]',
    );
  const format = values.format ?? 'table';
  if (!['table', 'csv', 'json'].includes(format)) throw new UsageError('--format must be table, csv or json');
  if (values.month !== undefined && !/^\d{4}-\d{2}$/.test(values.month))
    throw new UsageError('--month must look like 2026-11');
  const target = adminTarget(values, io);
  const q = new URLSearchParams();
  if (values.tenant) q.set('tenant', values.tenant);
  if (values.month) {
    q.set('from', values.month);
    q.set('to', values.month);
  }
  if (values.from) q.set('from', values.from);
  if (values.to) q.set('to', values.to);
  q.set('group_by', values['group-by'] ?? 'day');
  const r = await adminRequest<{ data: Array<Record<string, unknown>> }>(
    target,
    'GET',
    `/admin/usage?${q.toString()}`,
  );
  const cols = ['tenant', 'group', 'requests', 'tokens_in', 'tokens_out', 'cost_usd', 'estimated', 'partial'];
  if (format === 'json') io.out(JSON.stringify(r.data, null, 2));
  else if (format === 'csv') io.out(csv(r.data, cols));
  else {
    const total = r.data.reduce<Record<string, number>>((t, row) => {
      for (const c of ['requests', 'tokens_in', 'tokens_out', 'cost_usd', 'estimated', 'partial'])
        t[c] = (t[c] ?? 0) + Number(row[c] ?? 0);
      return t;
    }, {});
    io.out(
      table(
        [
          ...r.data,
          { tenant: 'TOTAL', group: '', ...total, cost_usd: Math.round((total.cost_usd ?? 0) * 1e6) / 1e6 },
        ],
        cols,
      ),
    );
  }
  return 0;
}
