/**
 * Cross-field checks of a config (model aliases that must exist, duplicate ids, provider keys,
 * fallbacks). They read the config defensively so they can also run on a config that failed the
 * schema: `config check` then reports these problems together with the schema's, in one pass.
 * The schema's superRefine runs them on every valid config.
 */
import { sha256Hex } from '../lib/hash.js';
import { builtinRouteAt } from './builtin-routes.js';
import { configKeyId } from './key-ids.js';

export interface CrossProblem {
  path: Array<string | number>;
  message: string;
  /** A warning does not make the config invalid. */
  warning?: boolean;
}

const isRecord = (v: unknown): v is Record<string, unknown> =>
  v !== null && typeof v === 'object' && !Array.isArray(v);
const arr = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);
const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);

/** A split alias's variants, for a message. */
function variantsOf(model: Record<string, unknown>): string {
  return (
    arr(model.split)
      .map((v) => (isRecord(v) ? str(v.model) : undefined))
      .filter((m): m is string => m !== undefined)
      .join(', ') || 'none'
  );
}

/** Every cross-field problem of a (possibly invalid) config object. */
export function crossCheck(raw: unknown): CrossProblem[] {
  const out: CrossProblem[] = [];
  if (!isRecord(raw)) return out;
  const models = isRecord(raw.models) ? raw.models : {};
  const aliases = Object.keys(models);
  const known = (m: string): boolean => m in models;
  const defined = aliases.join(', ') || 'none';

  if (isRecord(raw.routes)) {
    /** Dedicated path -> the route that has it. */
    const routePaths = new Map<string, string>();
    for (const [team, r] of Object.entries(raw.routes)) {
      const m = isRecord(r) ? str(r.model) : undefined;
      if (m !== undefined && !known(m))
        out.push({
          path: ['routes', team, 'model'],
          message: `unknown model alias "${m}" (defined: ${defined})`,
        });
      // A path served twice would crash the start (or shadow a route): refuse it here instead.
      const p = isRecord(r) ? str(r.path) : undefined;
      if (p === undefined) continue;
      const instead = /^[a-z0-9_-]+$/.test(team) ? ` (e.g. /teams/${team})` : '';
      const builtin = builtinRouteAt(p);
      const other = routePaths.get(p);
      if (builtin)
        out.push({
          path: ['routes', team, 'path'],
          message: `${p} is ${builtin}, which Portico serves itself: give this route another path${instead}`,
        });
      else if (other !== undefined)
        out.push({
          path: ['routes', team, 'path'],
          message: `${p} is already the path of route ${other}: give each route its own path${instead}`,
        });
      else routePaths.set(p, team);
    }
  }

  const seen = new Set<string>();
  /** Key digest -> where it was first declared (a key authenticates as exactly one tenant). */
  const keyDigests = new Map<string, { tenant: string; at: string }>();
  arr(raw.tenants).forEach((t, i) => {
    if (!isRecord(t)) return;
    const id = str(t.id);
    if (id !== undefined) {
      if (seen.has(id)) out.push({ path: ['tenants', i, 'id'], message: `duplicate tenant id "${id}"` });
      seen.add(id);
    }
    const keyIds = new Set<string>();
    arr(t.api_keys).forEach((k, j) => {
      if (!isRecord(k)) return;
      const value = str(k.value);
      const sha = str(k.sha256);
      const field = value !== undefined ? 'value' : 'sha256';
      const digest = value ? sha256Hex(value) : sha && /^[0-9a-f]{64}$/.test(sha) ? sha : undefined;
      // The id the gateway gives the key (usage records and the admin API name keys by it); without
      // an id and a valid key there is none (the schema reports the key).
      const explicit = str(k.id);
      const keyId = digest === undefined ? explicit : configKeyId(String(id ?? i), explicit, digest);
      if (keyId !== undefined) {
        if (keyIds.has(keyId))
          out.push({
            path: ['tenants', i, 'api_keys', j, 'id'],
            message: `duplicate key id "${keyId}" in tenant ${id ?? i}: give each key its own id (usage is recorded per key id)`,
          });
        keyIds.add(keyId);
      }
      if (digest === undefined) return;
      const first = keyDigests.get(digest);
      if (first)
        out.push({
          path: ['tenants', i, 'api_keys', j, field],
          message:
            first.tenant === String(id ?? i)
              ? `the same API key as ${first.at}: list each key once`
              : `the same API key as ${first.at} (tenant ${first.tenant}): a key belongs to one tenant only; give each tenant its own key`,
        });
      else keyDigests.set(digest, { tenant: String(id ?? i), at: `tenants[${i}].api_keys[${j}]` });
    });
    const dm = str(t.default_model);
    if (dm !== undefined && !known(dm))
      out.push({
        path: ['tenants', i, 'default_model'],
        message: `unknown model alias "${dm}" (defined: ${defined})`,
      });
    arr(t.allowed_models).forEach((m, j) => {
      if (typeof m === 'string' && m !== '*' && !known(m))
        out.push({
          path: ['tenants', i, 'allowed_models', j],
          message: `unknown model alias "${m}" (defined: ${defined})`,
        });
    });
    if (arr(t.api_keys).length === 0)
      out.push({
        path: ['tenants', i, 'api_keys'],
        message: `tenant ${id ?? i} has no api_keys: only keys created through the admin API (portico keys create --tenant ${id ?? 'ID'}) can use it`,
        warning: true,
      });
  });

  // The admin token must not also be a tenant's key: whoever holds that key would hold the admin API.
  const adminToken = isRecord(raw.admin) ? str(raw.admin.token) : undefined;
  const clash = adminToken ? keyDigests.get(sha256Hex(adminToken)) : undefined;
  if (clash)
    out.push({
      path: ['admin', 'token'],
      message: `admin.token is also the API key at ${clash.at} (tenant ${clash.tenant}): that tenant's key would open the admin API; give the admin token its own secret`,
    });

  const backendIds = new Set<string>();
  for (const [alias, model] of Object.entries(models)) {
    if (!isRecord(model)) continue;
    const backends = arr(model.backends);
    const split = Array.isArray(model.split) ? model.split : undefined;
    if (split && backends.length > 0)
      out.push({ path: ['models', alias, 'split'], message: 'a split alias has no backends of its own' });
    if (split && arr(model.fallbacks).length > 0)
      out.push({
        path: ['models', alias, 'fallbacks'],
        message:
          "a split alias has no fallbacks of its own (requests go to its variant's pool): set fallbacks on its variants",
      });
    if (!split && backends.length === 0)
      out.push({ path: ['models', alias, 'backends'], message: 'give at least one backend (or a split)' });
    split?.forEach((v, i) => {
      const m = isRecord(v) ? str(v.model) : undefined;
      const target = m === undefined ? undefined : models[m];
      if (m !== undefined && (!isRecord(target) || Array.isArray(target.split)))
        out.push({
          path: ['models', alias, 'split', i, 'model'],
          message: `"${m}" must be a model alias with backends`,
        });
    });
    arr(model.fallbacks).forEach((f, i) => {
      if (typeof f !== 'string') return;
      if (f === alias)
        out.push({
          path: ['models', alias, 'fallbacks', i],
          message: `"${alias}" cannot fall back to itself`,
        });
      else if (!known(f))
        out.push({
          path: ['models', alias, 'fallbacks', i],
          message: `unknown model alias "${f}" (defined: ${defined})`,
        });
      else if (isRecord(models[f]) && Array.isArray(models[f].split))
        // A split picks its variant per caller when a request names it; a fallback is tried with
        // the pool of the alias it names, and a split alias has none.
        out.push({
          path: ['models', alias, 'fallbacks', i],
          message: `"${f}" is a split alias: a fallback must be a model alias with backends; name one of its variants (${variantsOf(models[f])}) instead`,
        });
      else {
        const back = models[f];
        if (isRecord(back) && arr(back.fallbacks).includes(alias))
          out.push({
            path: ['models', alias, 'fallbacks', i],
            message: `fallbacks loop: ${alias} -> ${f} -> ${alias}. Fallbacks are not followed transitively (only ${alias}'s own list is tried), so this loop adds nothing; remove one side`,
            warning: true,
          });
      }
    });
    backends.forEach((b, i) => {
      if (!isRecord(b)) return;
      const id = str(b.id) ?? `${alias}-${i}`;
      if (backendIds.has(id))
        out.push({ path: ['models', alias, 'backends', i, 'id'], message: `duplicate backend id "${id}"` });
      backendIds.add(id);
      const provider = str(b.provider);
      const key = b.api_key;
      const missing = key === undefined || key === '';
      if ((provider === 'openrouter' || provider === 'together') && missing)
        out.push({
          path: ['models', alias, 'backends', i, 'api_key'],
          message: `provider ${provider} needs an api_key: add api_key: \${${provider.toUpperCase()}_API_KEY} and set that variable`,
        });
      if (provider === 'anthropic' && missing)
        out.push({
          path: ['models', alias, 'backends', i, 'api_key'],
          message:
            'provider anthropic needs an api_key: add api_key: ${ANTHROPIC_API_KEY} and set that variable',
        });
      if (provider === 'openai' && missing && b.base_url === undefined)
        out.push({
          path: ['models', alias, 'backends', i, 'api_key'],
          message:
            'provider openai without base_url calls api.openai.com, which needs an api_key: add api_key: ${OPENAI_API_KEY} (or set base_url to your OpenAI-compatible server)',
          warning: true,
        });
    });
  }
  return out;
}
