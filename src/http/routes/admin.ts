/**
 * Admin API for tenants, keys and usage (Bearer admin token). Tenants declared in the config file
 * are listed but read-only here; tenants and keys created here live in the state store. Keys are
 * shown once, at creation. Reference: docs/admin-api.md.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { z } from 'zod';
import type { Gateway } from '../../app.js';
import { BudgetSchema, PriorityClassesForDocs, QuotaSchema, RateLimitsSchema } from '../../config/schema.js';
import { formatPath } from '../../config/load.js';
import { configKeyDigest, configKeyId } from '../../config/key-ids.js';
import { PorticoError } from '../../errors/portico-error.js';
import {
  StateConflictError,
  StateInvalidInputError,
  StateNotFoundError,
  type ApiKeyInfo,
  type JsonObject,
  type LedgerGroupBy,
  type LedgerRow,
  type QuotaUsage,
  type QuotaWindow,
  type TenantRecord,
  windowId,
  windowResetAt,
} from '../../state/index.js';
import { ledgerQuotaUsage, usageFor } from '../../tenancy/quota-seed.js';
import { TenantPolicySchema, type Tenancy } from '../../tenancy/tenancy.js';
import { requireAdmin } from '../admin-auth.js';
import { MAX_TIME_MS, checkLedgerFilter, isStorableExpiry } from '../../state/validate-input.js';

const idString = z
  .string()
  .regex(/^[a-z0-9][a-z0-9._-]{0,62}$/, 'use 1-63 lower-case letters, digits, ".", "_" or "-"');
const tenantFields = {
  display_name: z.string().min(1).max(200).optional(),
  company: z.string().max(200).nullable().optional(),
  industry: z.string().max(200).nullable().optional(),
  system_prompt: z.string().max(100_000).nullable().optional(),
  prompt_policy: z.enum(['prepend', 'replace', 'none']).optional(),
  allowed_models: z
    .array(z.string().min(1))
    .min(1, 'give at least one model alias, or ["*"] for every model (an empty list is not "all")')
    .superRefine((list, ctx) => {
      const first = new Map<string, number>();
      list.forEach((m, i) => {
        const at = first.get(m);
        if (at === undefined) first.set(m, i);
        else
          ctx.addIssue({
            code: 'custom',
            path: [i],
            message: `${JSON.stringify(m.slice(0, 100))} is listed twice (also at allowed_models[${at}]); give each model alias once`,
          });
      });
    })
    .optional(),
  limits: RateLimitsSchema.optional(),
  quota: QuotaSchema.optional(),
  budget: BudgetSchema.optional(),
  max_tokens_cap: z.number().int().min(1).optional(),
  default_model: z.string().optional(),
  priority: z.enum(PriorityClassesForDocs).optional(),
};
export const NewTenantBody = z.strictObject({ id: idString, ...tenantFields });
/** A PATCH may also clear a policy field with null (the tenant then has none of it). */
export const PatchTenantBody = z.strictObject({
  ...tenantFields,
  limits: RateLimitsSchema.nullable().optional(),
  quota: QuotaSchema.nullable().optional(),
  budget: BudgetSchema.nullable().optional(),
  max_tokens_cap: z.number().int().min(1).nullable().optional(),
  default_model: z.string().nullable().optional(),
});
export const NewKeyBody = z.strictObject({
  label: z.string().max(200).optional(),
  expires_at: z.iso
    .datetime({
      offset: true,
      error: 'use an ISO 8601 time with seconds and Z or an offset, e.g. 2027-01-01T00:00:00Z',
    })
    .refine(
      isStorableExpiry,
      'must fall in the years 0001-9999 once its offset is applied (UTC): give an ISO time up to 9999-12-31T23:59:59Z',
    )
    // A key that could never be used is a mistake (a wrong year, a local time read as UTC).
    .refine(
      (v) => Date.parse(v) > Date.now(),
      'is not in the future: give a later time, or leave expires_at out for a key that does not expire',
    )
    .nullable()
    .optional(),
  limits: RateLimitsSchema.optional(),
  quota: QuotaSchema.optional(),
});
/** One value of a query parameter (a parameter given twice arrives as a list). */
const queryValue = z.string({ error: 'give this parameter once, with one value' });
export const KeysQuery = z.strictObject({
  tenant: queryValue
    .regex(
      /^(?:[a-z0-9][a-z0-9._-]{0,62})?$/,
      'give a tenant id (1-63 lower-case letters, digits, ".", "_" or "-"), or leave it empty for every tenant',
    )
    .optional()
    .describe("only this tenant's keys; empty or absent: every tenant's"),
});
export const UsageQuery = z.strictObject({
  tenant: queryValue.optional(),
  from: queryValue.optional(),
  to: queryValue.optional(),
  model: queryValue.optional(),
  key: queryValue.optional(),
  group_by: z.enum(['day', 'month', 'model', 'key']).default('day'),
});

/** The fields of an object schema (through optional/nullable/default), else undefined. */
function objectShape(t: unknown): Record<string, unknown> | undefined {
  while (t instanceof z.ZodOptional || t instanceof z.ZodNullable || t instanceof z.ZodDefault)
    t = t.unwrap();
  return t instanceof z.ZodObject ? (t.shape as Record<string, unknown>) : undefined;
}

function parse<T>(schema: z.ZodType<T>, body: unknown): T {
  const r = schema.safeParse(body ?? {});
  if (!r.success) {
    const first = r.error.issues[0];
    if (first?.code === 'unrecognized_keys') {
      // Name the unknown field (`param`) and the fields this object takes.
      const at = first.path;
      const names = first.keys.map((k) => formatPath([...at, k]));
      let shape = objectShape(schema);
      for (const seg of at) shape = objectShape(shape?.[String(seg)]);
      const known = shape ? ` (known fields: ${Object.keys(shape).join(', ')})` : '';
      throw new PorticoError(
        'invalid_request',
        `${names.join(', ')}: unknown field${names.length > 1 ? 's' : ''}${known}`,
        { param: names[0] ?? null },
      );
    }
    const path = formatPath(first?.path ?? []);
    throw new PorticoError('invalid_request', `${path ? path + ': ' : ''}${first?.message ?? 'invalid'}`, {
      param: path || null,
    });
  }
  return r.data;
}

/**
 * The model aliases a tenant body names must exist in the config now, as `config check` requires
 * of config tenants (`*` stands for every model).
 */
function checkModelAliases(
  gw: Gateway,
  body: { allowed_models?: string[]; default_model?: string | null },
): void {
  const models = gw.snapshot.config.models;
  const known = (m: string): boolean => Object.hasOwn(models, m);
  const defined = Object.keys(models).join(', ') || 'none';
  const unknown = (param: string, m: string): PorticoError =>
    new PorticoError(
      'invalid_request',
      `${param}: unknown model alias ${JSON.stringify(m.slice(0, 100))} (defined: ${defined}).`,
      { param },
    );
  body.allowed_models?.forEach((m, i) => {
    if (m !== '*' && !known(m)) throw unknown(`allowed_models[${i}]`, m);
  });
  if (typeof body.default_model === 'string' && !known(body.default_model))
    throw unknown('default_model', body.default_model);
}

function tenancyOf(gw: Gateway): Tenancy {
  const t = gw.tenancy;
  if (!t) throw new PorticoError('unsupported_operation', 'This gateway runs without a state store.');
  return t;
}

/** The API view of a tenant. */
export function tenantView(rec: TenantRecord): Record<string, unknown> {
  const policy = TenantPolicySchema.safeParse(rec.limits ?? {});
  const p = policy.success ? policy.data : {};
  return {
    id: rec.id,
    display_name: rec.display_name,
    company: rec.company,
    industry: rec.industry,
    system_prompt: rec.system_prompt ?? '',
    prompt_policy: typeof rec.prompt_policy?.policy === 'string' ? rec.prompt_policy.policy : 'prepend',
    allowed_models: rec.allowed_models,
    limits: p.limits ?? null,
    quota: p.quota ?? null,
    budget: p.budget ?? null,
    max_tokens_cap: p.max_tokens_cap ?? null,
    default_model: p.default_model ?? null,
    priority: rec.priority,
    source: rec.source,
    read_only: rec.source === 'config',
    created_at: rec.created_at,
  };
}

function keyView(k: ApiKeyInfo): Record<string, unknown> {
  const limits = (k.limits ?? {}) as { limits?: unknown; quota?: unknown };
  return { ...k, limits: limits.limits ?? null, quota: limits.quota ?? null, source: 'api' };
}

const MONTH_RE = /^(\d{4})-(\d{2})$/;
const DAY_RE = /^(\d{4})-(\d{2})-(\d{2})$/;
/** An ISO time with its offset (Z or ±hh:mm): without one it would be read in the server's zone. */
const ISO_RE =
  /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2})(?:\.\d{1,9})?)?(?:Z|[+-](\d{2}):(\d{2}))$/;

/** Does this UTC calendar day exist (no 2026-02-30, no month 13)? */
function dayExists(y: number, mo: number, day: number): boolean {
  const back = new Date(Date.UTC(y, mo - 1, day));
  return back.getUTCFullYear() === y && back.getUTCMonth() === mo - 1 && back.getUTCDate() === day;
}

/**
 * An ISO time's fields are all in range: Date.parse rolls 2026-02-30T00:00:00Z over to March 2
 * (review, 2026-12) and takes T24:00 as the next day.
 */
function isoFieldsExist(m: RegExpExecArray): boolean {
  const [y, mo, d, h, mi, sec, oh, om] = m.slice(1).map((x) => (x === undefined ? 0 : Number(x)));
  return (
    dayExists(y ?? 0, mo ?? 0, d ?? 0) &&
    (h ?? 0) <= 23 &&
    (mi ?? 0) <= 59 &&
    (sec ?? 0) <= 59 &&
    (oh ?? 0) <= 23 &&
    (om ?? 0) <= 59
  );
}

/**
 * A usage query bound as epoch ms, and whether it named a whole month or day (a `to` of that form
 * means "through the end of it"). Forms: a month (2026-11), a day (2026-11-22), an ISO time with
 * its offset, or epoch milliseconds (digits only, whatever their number). UTC throughout; a date
 * that does not exist (2026-11-31) is refused rather than rolled over.
 */
export function parseTime(
  v: string | undefined,
  name: string,
): { ms: number; unit?: 'month' | 'day' } | undefined {
  if (v === undefined || v === '') return undefined;
  const bad = (): PorticoError =>
    new PorticoError(
      'invalid_request',
      `${name}=${JSON.stringify(v.slice(0, 40))} is not a time Portico can use: give a month (2026-11), a day (2026-11-22), an ISO time with its offset (2026-11-22T08:00:00Z) or epoch milliseconds, between 1970 and 9999 (UTC).`,
      { param: name },
    );
  let ms: number;
  let unit: 'month' | 'day' | undefined;
  const m = MONTH_RE.exec(v);
  const d = DAY_RE.exec(v);
  const iso = ISO_RE.exec(v);
  if (/^\d+$/.test(v)) ms = Number(v);
  else if (m) {
    const month = Number(m[2]);
    if (month < 1 || month > 12) throw bad();
    ms = Date.UTC(Number(m[1]), month - 1, 1);
    unit = 'month';
  } else if (d) {
    const [y, mo, day] = [Number(d[1]), Number(d[2]), Number(d[3])];
    if (!dayExists(y, mo, day)) throw bad();
    ms = Date.UTC(y, mo - 1, day);
    unit = 'day';
  } else if (iso) {
    if (!isoFieldsExist(iso)) throw bad();
    ms = Date.parse(v);
  } else throw bad();
  if (!Number.isSafeInteger(ms) || ms < 0 || ms > MAX_TIME_MS) throw bad();
  return unit ? { ms, unit } : { ms };
}

/**
 * The ledger range of a usage query: `from` inclusive, `to` exclusive (a `to` month or day runs
 * through its end; one that ends past 9999 leaves the range open at the top, as 9999-12-31 means
 * "through the end of 9999"). A range that ends where it begins, or before, is refused naming both
 * parameters (review, 2026-12: from=2026-12&to=2026-01 answered an empty list).
 */
export function usageRange(
  fromValue: string | undefined,
  toValue: string | undefined,
): { from?: number; to?: number } {
  const from = parseTime(fromValue, 'from')?.ms;
  const end = parseTime(toValue, 'to');
  let to = end?.ms;
  if (end?.unit === 'month') {
    const d = new Date(end.ms);
    to = Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 1);
  } else if (end?.unit === 'day') to = end.ms + 86_400_000;
  if (to !== undefined && to > MAX_TIME_MS) to = undefined;
  if (from !== undefined && to !== undefined && from >= to)
    throw new PorticoError(
      'invalid_request',
      `from=${JSON.stringify(fromValue?.slice(0, 40))} is not before to=${JSON.stringify(toValue?.slice(0, 40))}: the range would hold nothing. Give a from earlier than the to (a to day or month includes all of it: from=2026-11&to=2026-11 is all of November).`,
      { param: 'from' },
    );
  return { ...(from !== undefined ? { from } : {}), ...(to !== undefined ? { to } : {}) };
}

/**
 * A tenant's usage of the current day and month. With a quota: its counters (`source: "quota"`,
 * holds of requests in flight as `reserved*`). Without one nothing counts on the request path, so
 * the figures come from the ledger, as a quota would count them (`source: "ledger"`; review,
 * 2026-12: they read 0 for a tenant that had made requests).
 */
async function usageOf(gw: Gateway, tenancy: Tenancy, rec: TenantRecord): Promise<Record<string, unknown>> {
  const policy = TenantPolicySchema.safeParse(rec.limits ?? {});
  const quota = policy.success ? policy.data.quota : undefined;
  const withLimits = (u: QuotaUsage, source: 'quota' | 'ledger', tokens?: number, requests?: number) => ({
    ...u,
    limitTokens: tokens ?? null,
    limitRequests: requests ?? null,
    source,
  });
  if (!quota) {
    const now = Date.now();
    await tenancy.state.ledgerWriter.flush();
    const scope = { tenant: rec.id };
    const u = usageFor(
      await ledgerQuotaUsage(
        tenancy.state.ledger,
        [scope],
        gw.snapshot.config.admission.count_cache_hits_against_quota,
        now,
      ),
      scope,
    );
    const view = (window: QuotaWindow): QuotaUsage => ({
      window,
      windowId: windowId(window, now),
      usedTokens: u[window].tokens,
      usedRequests: u[window].requests,
      reservedTokens: 0,
      reservedRequests: 0,
      resetAt: windowResetAt(window, now),
    });
    return { day: withLimits(view('day'), 'ledger'), month: withLimits(view('month'), 'ledger') };
  }
  const [day, month] = await Promise.all([
    tenancy.state.quotas.usage(rec.id, 'tenant', 'day'),
    tenancy.state.quotas.usage(rec.id, 'tenant', 'month'),
  ]);
  return {
    day: withLimits(day, 'quota', quota.daily_tokens, quota.daily_requests),
    month: withLimits(month, 'quota', quota.monthly_tokens, quota.monthly_requests),
  };
}

/**
 * A tenant whose stored policy now has a quota counts the day's and month's usage so far (the
 * ledger's; never lowered): a quota PATCHed at noon does not start the day from zero, and a tenant
 * re-created with the id of a deleted one does not dodge its quota (docs/tenancy.md). Best effort:
 * a store that cannot be read leaves the quota counting from now, logged.
 */
async function seedTenantQuota(gw: Gateway, t: Tenancy, rec: TenantRecord): Promise<void> {
  const policy = TenantPolicySchema.safeParse(rec.limits ?? {});
  if (!policy.success || !policy.data.quota) return;
  try {
    await t.seedQuotaUsage([{ tenant: rec.id }], gw.snapshot.config.admission.count_cache_hits_against_quota);
  } catch (err) {
    gw.logger.warn(
      { err, tenant: rec.id },
      "a new quota could not count the day's usage from the ledger; it counts from now",
    );
  }
}

function policyJson(
  body: {
    limits?: unknown;
    quota?: unknown;
    budget?: unknown;
    max_tokens_cap?: number | null;
    default_model?: string | null;
  },
  base: JsonObject | null,
): JsonObject {
  const out: Record<string, unknown> = { ...(base ?? {}) };
  for (const k of ['limits', 'quota', 'budget', 'max_tokens_cap', 'default_model'] as const)
    if (body[k] !== undefined) out[k] = body[k];
  return out as JsonObject;
}

export function registerAdminRoutes(app: FastifyInstance, gw: Gateway): void {
  const admin = (request: FastifyRequest): Tenancy => {
    requireAdmin(gw, request);
    return tenancyOf(gw);
  };
  /**
   * The stored tenant `id`. One this replica's config declares is put back into the store if
   * another replica's config sync removed it (that replica runs another config): a tenant in this
   * replica's own config is never a 404 here.
   */
  const storedTenant = async (t: Tenancy, id: string): Promise<TenantRecord | null> =>
    (await t.state.tenants.get(id)) ?? (await t.restoreConfigTenant(id, gw.snapshot)) ?? null;
  const getTenant = async (t: Tenancy, id: string): Promise<TenantRecord> => {
    const rec = await storedTenant(t, id);
    if (!rec) throw new PorticoError('not_found', `No tenant "${id.slice(0, 80)}".`, { param: 'id' });
    return rec;
  };
  /** A config-sourced record this replica's config does not declare (TenantStore.syncFromConfig). */
  const undeclaredConfigTenant = (rec: TenantRecord): boolean =>
    rec.source === 'config' && !gw.snapshot.tenants.has(rec.id);

  app.get('/admin/tenants', async (request) => {
    const t = admin(request);
    return { object: 'list', data: (await t.state.tenants.list()).map(tenantView) };
  });

  app.post('/admin/tenants', async (request, reply) => {
    const t = admin(request);
    const body = parse(NewTenantBody, request.body);
    checkModelAliases(gw, body);
    // Declared in the config file (the store may not have it yet, just after a reload).
    if (gw.snapshot.tenants.has(body.id))
      throw new PorticoError(
        'conflict',
        `Tenant "${body.id}" is declared in the config file (tenants); pick another id, or edit the file.`,
        { param: 'id' },
      );
    try {
      const rec = await t.state.tenants.create({
        id: body.id,
        display_name: body.display_name ?? body.id,
        company: body.company ?? null,
        industry: body.industry ?? null,
        system_prompt: body.system_prompt ?? null,
        prompt_policy: { policy: body.prompt_policy ?? 'prepend' },
        allowed_models: body.allowed_models ?? ['*'],
        limits: policyJson(body, null),
        priority: body.priority ?? 'normal',
      });
      await seedTenantQuota(gw, t, rec);
      gw.budgetsChanged();
      reply.code(201);
      return tenantView(rec);
    } catch (err) {
      if (err instanceof StateConflictError)
        throw new PorticoError('conflict', `Tenant "${body.id}" already exists.`, { param: 'id' });
      throw err;
    }
  });

  app.get<{ Params: { id: string } }>('/admin/tenants/:id', async (request) => {
    const t = admin(request);
    const rec = await getTenant(t, request.params.id);
    return { ...tenantView(rec), usage: await usageOf(gw, t, rec) };
  });

  app.patch<{ Params: { id: string } }>('/admin/tenants/:id', async (request) => {
    const t = admin(request);
    const rec = await getTenant(t, request.params.id);
    if (undeclaredConfigTenant(rec))
      throw new PorticoError(
        'permission_denied',
        `Tenant "${rec.id}" is a config tenant that this replica's config does not declare (another replica's config declares it, or it was kept for its API keys after its removal from the config file); it is read-only here. Edit it in the config file that declares it, or remove it for good with DELETE /admin/tenants/${rec.id}.`,
      );
    if (rec.source === 'config') {
      throw new PorticoError(
        'permission_denied',
        `Tenant "${rec.id}" is declared in the config file and is read-only here; edit the file (it is reloaded automatically).`,
      );
    }
    const body = parse(PatchTenantBody, request.body);
    checkModelAliases(gw, body);
    const updated = await t.state.tenants.update(rec.id, {
      ...(body.display_name !== undefined ? { display_name: body.display_name } : {}),
      ...(body.company !== undefined ? { company: body.company } : {}),
      ...(body.industry !== undefined ? { industry: body.industry } : {}),
      ...(body.system_prompt !== undefined ? { system_prompt: body.system_prompt } : {}),
      ...(body.prompt_policy !== undefined ? { prompt_policy: { policy: body.prompt_policy } } : {}),
      ...(body.allowed_models !== undefined ? { allowed_models: body.allowed_models } : {}),
      ...(body.priority !== undefined ? { priority: body.priority } : {}),
      // Only the policy keys this PATCH sets, merged in the store's transaction: two PATCHes of
      // different keys at once both land (review, 2026-12-07: Postgres lost one in 19 of 20).
      limits_merge: policyJson(body, null),
    });
    if (!updated) throw new PorticoError('not_found', `No tenant "${rec.id}".`);
    // A quota set (or changed): the counters hold at least the ledger's usage so far.
    if (body.quota) await seedTenantQuota(gw, t, updated);
    gw.budgetsChanged();
    return { ...tenantView(updated), ...undeliveredWarning(t, 'serve the tenant as it was') };
  });

  app.delete<{ Params: { id: string } }>('/admin/tenants/:id', async (request, reply) => {
    const t = admin(request);
    const rec = await getTenant(t, request.params.id);
    // A config tenant this replica does not declare was kept by a config sync for its API keys
    // (TenantStore.syncFromConfig): deleting it, keys included, is the operator's call, here.
    if (rec.source === 'config' && !undeclaredConfigTenant(rec))
      throw new PorticoError(
        'permission_denied',
        `Tenant "${rec.id}" is declared in the config file; remove it there.`,
      );
    await t.state.tenants.delete(rec.id);
    gw.budgetsChanged();
    reply.code(204);
    return null;
  });

  /** Keys declared in the config file (read-only here: edit the file to remove one). */
  const configKeyViews = (tenantId?: string): Array<Record<string, unknown>> =>
    gw.snapshot.config.tenants
      .filter((x) => tenantId === undefined || x.id === tenantId)
      .flatMap((tenant) =>
        tenant.api_keys.map((k) => ({
          id: configKeyId(tenant.id, k.id, configKeyDigest(k)),
          tenant_id: tenant.id,
          label: k.label ?? '',
          prefix: null,
          expires_at: null,
          revoked_at: null,
          limits: k.limits ?? null,
          quota: k.quota ?? null,
          created_at: null,
          source: 'config',
        })),
      );

  app.get<{ Params: { id: string } }>('/admin/tenants/:id/keys', async (request) => {
    const t = admin(request);
    const rec = await getTenant(t, request.params.id);
    return {
      object: 'list',
      data: [...configKeyViews(rec.id), ...(await t.state.keys.list(rec.id)).map(keyView)],
    };
  });

  app.post<{ Params: { id: string } }>('/admin/tenants/:id/keys', async (request, reply) => {
    const t = admin(request);
    const body = parse(NewKeyBody, request.body);
    const create = (): ReturnType<typeof t.state.keys.create> =>
      t.state.keys.create({
        tenant_id: request.params.id,
        label: body.label ?? '',
        expires_at: body.expires_at ?? null,
        limits:
          body.limits || body.quota
            ? ({
                ...(body.limits ? { limits: body.limits } : {}),
                ...(body.quota ? { quota: body.quota } : {}),
              } as JsonObject)
            : null,
      });
    try {
      let created: Awaited<ReturnType<typeof create>>;
      try {
        created = await create();
      } catch (err) {
        // This replica's config tenant, removed from the store by another replica's sync: put back.
        if (!(err instanceof StateNotFoundError)) throw err;
        if (!(await t.restoreConfigTenant(request.params.id, gw.snapshot))) throw err;
        created = await create();
      }
      reply.code(201);
      return {
        key: created.plaintext,
        ...keyView(created.key),
        warning: 'Store this key now: it is shown only once.',
      };
    } catch (err) {
      if (err instanceof StateNotFoundError)
        throw new PorticoError('not_found', `No tenant "${request.params.id.slice(0, 80)}".`);
      throw err;
    }
  });

  app.get('/admin/keys', async (request) => {
    const t = admin(request);
    const tenant = parse(KeysQuery, request.query).tenant || undefined;
    // As GET /admin/tenants/{id}/keys: an unknown tenant is a 404, not an empty list.
    if (tenant !== undefined && !(await storedTenant(t, tenant)))
      throw new PorticoError('not_found', `No tenant "${tenant}". GET /admin/tenants lists the tenants.`, {
        param: 'tenant',
      });
    return {
      object: 'list',
      data: [...configKeyViews(tenant), ...(await t.state.keys.list(tenant)).map(keyView)],
    };
  });

  app.post<{ Params: { id: string } }>('/admin/keys/:id/revoke', async (request) => {
    const t = admin(request);
    // A key declared in the config file is listed by GET /admin/keys but lives in the file.
    const tenants = gw.snapshot.config.tenants;
    for (const [i, tenant] of tenants.entries()) {
      const j = tenant.api_keys.findIndex(
        (k) => configKeyId(tenant.id, k.id, configKeyDigest(k)) === request.params.id,
      );
      if (j >= 0)
        throw new PorticoError(
          'permission_denied',
          `Key "${request.params.id}" (tenant ${tenant.id}) is declared in the config file, at tenants[${i}].api_keys[${j}]: remove it there (the file is reloaded automatically); only keys created through the admin API can be revoked here.`,
        );
    }
    const key = await t.state.keys.revoke(request.params.id);
    if (!key)
      throw new PorticoError(
        'not_found',
        `No key "${request.params.id.slice(0, 80)}" (see GET /admin/keys for the key ids).`,
      );
    return { ...keyView(key), ...undeliveredWarning(t, 'accept the key') };
  });

  app.get('/admin/usage', async (request) => {
    const t = admin(request);
    const q = parse(UsageQuery, request.query);
    // A month or a day in `to` means "through the end of it" (epoch ms and ISO times are exact).
    const range = usageRange(q.from, q.to);
    const filter = {
      ...(q.tenant ? { tenant: q.tenant } : {}),
      ...range,
      ...(q.model ? { model: q.model } : {}),
      ...(q.key ? { key_id: q.key } : {}),
    };
    // Refuse a bad filter (400) before flushing: a 503 for the store must not hide it.
    checkLedgerFilter(filter);
    await flushForTotals(t);
    let rows: LedgerRow[];
    try {
      // An unknown tenant is a 404, as GET /admin/tenants/{id} is, unless the ledger has its rows: a
      // deleted tenant's usage stays queryable (docs/admin-api.md).
      if (
        q.tenant &&
        !(await storedTenant(t, q.tenant)) &&
        (await t.state.ledger.count({ tenant: q.tenant })) === 0
      )
        throw new PorticoError(
          'not_found',
          `No tenant "${q.tenant.slice(0, 80)}", and no usage recorded for that id. GET /admin/tenants lists the tenants.`,
          { param: 'tenant' },
        );
      rows = await t.state.ledger.query(filter, q.group_by as LedgerGroupBy);
    } catch (err) {
      if (err instanceof StateInvalidInputError || err instanceof PorticoError) throw err;
      const store = t.state.ledgerWriter.store;
      gw.metrics.stateErrors.labels(store, 'fail_closed').inc();
      throw new PorticoError(
        'state_unavailable',
        `The usage ledger store (${store}) could not be read: ${errorText(err)}. Retry shortly; operators: see docs/runbooks/postgres-down.md.`,
        { headers: { 'retry-after': '1' }, cause: err },
      );
    }
    return { object: 'list', group_by: q.group_by, data: rows };
  });
}

/**
 * A `warning` when the change was saved but its invalidation reached neither Redis nor Postgres'
 * version row (the bus retries it; state/dual-bus.ts): the other replicas do not know yet.
 */
function undeliveredWarning(t: Tenancy, what: string): { warning?: string } {
  if (!t.state.bus.undelivered?.()) return {};
  return {
    warning: `Saved, but the other replicas could not be told yet (neither Redis nor Postgres took the invalidation): they may ${what} for up to 30 s (their cache lifetime). This gateway retries every second and logs when it is delivered; operators: see docs/runbooks/postgres-down.md and redis-down.md.`,
  };
}

function errorText(err: unknown): string {
  return (err instanceof Error ? err.message : String(err)).slice(0, 200);
}

/**
 * Write every buffered usage record before totals are read, trying the store now even inside the
 * writer's retry backoff. Records it cannot write yet (the ledger store fails) would be missing
 * from the totals: a billing client must never get silently low totals, so that is a 503
 * `state_unavailable` saying how many records wait, with the writer's next retry as retry-after.
 */
async function flushForTotals(t: Tenancy): Promise<void> {
  const writer = t.state.ledgerWriter;
  try {
    await writer.flush(true);
  } catch (err) {
    const n = writer.unwritten();
    if (n === 0) return;
    throw new PorticoError(
      'state_unavailable',
      `${n} usage record${n === 1 ? ' is' : 's are'} not written to the ledger store (${writer.store}) yet: appending fails (${errorText(err)}). Totals read now would leave ${n === 1 ? 'it' : 'them'} out; retry after retry-after (the gateway keeps retrying the write). Operators: see docs/runbooks/postgres-down.md.`,
      { headers: { 'retry-after': String(Math.max(1, Math.ceil(writer.retryInMs() / 1000))) }, cause: err },
    );
  }
}
