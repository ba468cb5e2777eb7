/** `portico config check FILE [--json]` and `portico config schema [--out FILE]`. */
import { writeFile } from 'node:fs/promises';
import { checkConfigFile } from '../config/check.js';
import type { CliIO } from './common.js';

export async function runConfigCheck(file: string, o: { json?: boolean }, io: CliIO): Promise<number> {
  const r = await checkConfigFile(file, io.env);
  if (o.json) {
    io.out(JSON.stringify(r, null, 2));
    return r.ok ? 0 : 1;
  }
  const line = (p: { path: string; message: string }): string => `  ${p.path || '(file)'}: ${p.message}`;
  if (!r.ok) {
    io.out(
      `${file}: ${r.errors.length} error(s)${r.warnings.length ? `, ${r.warnings.length} warning(s)` : ''}`,
    );
    for (const p of r.errors) io.out(line(p));
  } else {
    const s = r.summary;
    io.out(
      `ok: ${file}: ${s?.tenants ?? 0} tenant(s), ${s?.models ?? 0} model(s), ${s?.backends ?? 0} backend(s)` +
        (r.warnings.length ? `, ${r.warnings.length} warning(s)` : ''),
    );
  }
  if (r.warnings.length) {
    if (!r.ok) io.out('warnings:');
    for (const p of r.warnings) io.out(`${line(p)} (warning)`);
  }
  return r.ok ? 0 : 1;
}

export async function runConfigSchema(o: { out?: string }, io: CliIO): Promise<number> {
  const { configJsonSchemaText } = await import('../config/json-schema.js');
  const text = configJsonSchemaText();
  if (o.out) {
    await writeFile(o.out, text);
    io.err(`wrote ${o.out}`);
  } else io.out(text.trimEnd());
  return 0;
}
