/**
 * `portico config check`: every problem of a config file in one report — YAML syntax, unset
 * ${ENV} variables (each once), schema errors, cross-field checks (model aliases, provider keys,
 * fallbacks, tenants without keys) — each with its path and a message a person can act on.
 */
import { readFile } from 'node:fs/promises';
import { parseDocument } from 'yaml';
import { ConfigError, formatPath, interpolateEnv, loadConfigFile, type ConfigProblem } from './load.js';
import { crossCheck } from './cross-check.js';

export interface CheckReport {
  file: string;
  ok: boolean;
  errors: ConfigProblem[];
  warnings: ConfigProblem[];
  summary: { tenants: number; models: number; backends: number } | null;
}

export async function checkConfigFile(
  file: string,
  env: Record<string, string | undefined>,
): Promise<CheckReport> {
  try {
    const { config } = await loadConfigFile(file, env);
    const errors: ConfigProblem[] = [];
    const models = Object.keys(config.models).length;
    if (models === 0)
      errors.push({
        path: 'models',
        message: 'no models: define at least one model alias with a backend (see examples/demo.yaml)',
      });
    const warnings = crossCheck(config)
      .filter((p) => p.warning)
      .map((p) => ({ path: formatPath(p.path), message: p.message }));
    return {
      file,
      ok: errors.length === 0,
      errors,
      warnings,
      summary: {
        tenants: config.tenants.length,
        models,
        backends: Object.values(config.models).reduce((n, m) => n + m.backends.length, 0),
      },
    };
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    return { file, ok: false, errors: err.problems, warnings: await rawWarnings(file, env), summary: null };
  }
}

/** The warnings of a config that has errors too (read leniently: the report should be complete). */
async function rawWarnings(file: string, env: Record<string, string | undefined>): Promise<ConfigProblem[]> {
  try {
    const doc = parseDocument(await readFile(file, 'utf8'));
    if (doc.errors.length > 0) return [];
    const raw = interpolateEnv(doc.toJS(), env, []);
    return crossCheck(raw)
      .filter((p) => p.warning)
      .map((p) => ({ path: formatPath(p.path), message: p.message }));
  } catch {
    return [];
  }
}
