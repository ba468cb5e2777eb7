/**
 * Load a YAML config: parse, interpolate ${ENV} references in string values, validate against the
 * schema, read system_prompt_file contents, check that the server.tls files can be read. Every
 * problem is reported with its path.
 */
import { isStorableText } from '../lib/storable-text.js';
import { readFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { parseDocument } from 'yaml';
import type { z } from 'zod';
import { crossCheck } from './cross-check.js';
import { ConfigSchema, type PorticoConfig } from './schema.js';

export interface ConfigProblem {
  path: string;
  message: string;
}

export class ConfigError extends Error {
  readonly problems: ConfigProblem[];
  constructor(source: string, problems: ConfigProblem[]) {
    super(
      `${source}: ${problems.length} problem(s)\n` +
        problems.map((p) => `  ${p.path || '(root)'}: ${p.message}`).join('\n'),
    );
    this.name = 'ConfigError';
    this.problems = problems;
  }
}

export interface LoadedConfig {
  config: PorticoConfig;
  /** Absolute path of the config file (undefined when built from an object). */
  source?: string;
  /** Resolved system prompt per tenant id (inline or read from its file). */
  prompts: Map<string, string>;
  /** Every file the config depends on (the config itself and prompt files) — watched for hot reload. */
  files: string[];
}

const WHOLE_REF = /^\$\{[A-Za-z_][A-Za-z0-9_]*(?::-[^}]*)?\}$/;
const ENV_REF = /\$\$\{|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g;

export function formatPath(path: ReadonlyArray<PropertyKey>): string {
  let out = '';
  for (const seg of path) {
    if (typeof seg === 'number') out += `[${seg}]`;
    else out += out ? `.${String(seg)}` : String(seg);
  }
  return out;
}

/** Replace ${VAR} / ${VAR:-default} in every string of a parsed YAML tree. `$${` escapes a literal `${`. */
export function interpolateEnv(
  value: unknown,
  env: Record<string, string | undefined>,
  problems: ConfigProblem[],
  path: PropertyKey[] = [],
): unknown {
  if (typeof value === 'string') {
    const whole = WHOLE_REF.test(value);
    const out = value.replace(ENV_REF, (match, name: string | undefined, fallback: string | undefined) => {
      if (match === '$${') return '${';
      const v = name === undefined ? undefined : env[name];
      if (v !== undefined && v !== '') return v;
      if (fallback !== undefined) return fallback;
      problems.push({
        path: formatPath(path),
        message: `environment variable ${name} is not set (use \${${name}:-default} for a default)`,
      });
      return '';
    });
    // A value that is exactly one ${VAR} takes the YAML type of what it expands to (port: ${PORT}).
    if (whole && out !== '') {
      if (/^-?\d+(\.\d+)?$/.test(out)) return Number(out);
      if (out === 'true' || out === 'false') return out === 'true';
    }
    return out;
  }
  if (Array.isArray(value)) return value.map((v, i) => interpolateEnv(v, env, problems, [...path, i]));
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = interpolateEnv(v, env, problems, [...path, k]);
    return out;
  }
  return value;
}

/** zod's generic wording, made into something a person can act on. */
function friendly(message: string): string {
  const m = /^Invalid input: expected (\w+), received undefined$/.exec(message);
  if (m) return `required: this field is missing (expected ${m[1] === 'object' ? 'a mapping' : `a ${m[1]}`})`;
  return message;
}

export function zodProblems(error: z.ZodError): ConfigProblem[] {
  return error.issues.map((i) => ({ path: formatPath(i.path), message: friendly(i.message) }));
}

/** Validate an already-parsed object (used by tests and the admin API). */
export async function buildConfig(
  raw: unknown,
  opts: { env?: Record<string, string | undefined>; baseDir?: string; source?: string } = {},
): Promise<LoadedConfig> {
  const source = opts.source ?? '(config)';
  const problems: ConfigProblem[] = [];
  const interpolated = interpolateEnv(raw ?? {}, opts.env ?? {}, problems);
  const parsed = ConfigSchema.safeParse(interpolated);
  if (!parsed.success) {
    // A value left empty by an unset ${ENV} is reported once, as the missing variable.
    const reported = new Set(problems.map((p) => p.path));
    for (const p of zodProblems(parsed.error)) if (!reported.has(p.path)) problems.push(p);
    // The schema's cross-field checks run only on a valid config; run them here too so one pass
    // reports every problem (a missing provider key next to a typo elsewhere).
    for (const p of crossCheck(interpolated)) {
      const path = formatPath(p.path);
      if (!p.warning && !problems.some((q) => q.path === path)) problems.push({ path, message: p.message });
    }
  }
  if (problems.length > 0 || !parsed.success) throw new ConfigError(source, problems);
  const config = parsed.data;
  const baseDir = opts.baseDir ?? process.cwd();
  const prompts = new Map<string, string>();
  const files: string[] = [];
  await Promise.all(
    config.tenants.map(async (t, i) => {
      if (t.system_prompt_file !== undefined) {
        const file = resolve(baseDir, t.system_prompt_file);
        files.push(file);
        try {
          const text = (await readFile(file, 'utf8')).trim();
          if (isStorableText(text)) prompts.set(t.id, text);
          else
            problems.push({
              path: `tenants[${i}].system_prompt_file`,
              message: `${t.system_prompt_file} holds a NUL character or an unpaired surrogate (not UTF-8 text?): the tenant store could not hold it`,
            });
        } catch (e) {
          problems.push({
            path: `tenants[${i}].system_prompt_file`,
            message: `cannot read ${t.system_prompt_file}: ${(e as Error).message}`,
          });
        }
      } else {
        prompts.set(t.id, t.system_prompt ?? '');
      }
    }),
  );
  // The TLS files are read when the server starts (paths as given: relative to the working
  // directory); one that cannot be read is a config problem, reported here with its field.
  const tls = config.server.tls;
  if (tls) {
    await Promise.all(
      (['cert_file', 'key_file'] as const).map(async (field) => {
        try {
          await readFile(tls[field]);
        } catch (e) {
          problems.push({
            path: `server.tls.${field}`,
            message: `cannot read ${tls[field]}: ${(e as Error).message}`,
          });
        }
      }),
    );
  }
  if (problems.length > 0) throw new ConfigError(source, problems);
  return { config, prompts, files, ...(opts.source ? { source: opts.source } : {}) };
}

/** Read, parse and validate a YAML config file. Throws ConfigError listing every problem. */
export async function loadConfigFile(
  file: string,
  env: Record<string, string | undefined>,
): Promise<LoadedConfig> {
  const source = resolve(file);
  let text: string;
  try {
    text = await readFile(source, 'utf8');
  } catch (e) {
    throw new ConfigError(file, [{ path: '', message: `cannot read file: ${(e as Error).message}` }]);
  }
  const doc = parseDocument(text, { prettyErrors: true, uniqueKeys: true });
  if (doc.errors.length > 0) {
    throw new ConfigError(
      file,
      doc.errors.map((e) => ({
        path: e.linePos ? `line ${e.linePos[0].line}` : '',
        message: e.message.split('\n')[0] ?? e.message,
      })),
    );
  }
  const raw: unknown = doc.toJS();
  if (raw === null || raw === undefined)
    throw new ConfigError(file, [
      {
        path: '',
        message:
          'the file is empty: a config needs at least `models:` (and `tenants:` with api_keys); start from examples/demo.yaml',
      },
    ]);
  const loaded = await buildConfig(raw, { env, baseDir: dirname(source), source });
  loaded.files.unshift(source);
  return loaded;
}
