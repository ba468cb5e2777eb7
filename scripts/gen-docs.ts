/**
 * Generates the parts of the docs that must match the code: the error table in docs/errors.md, the
 * field reference in docs/config.md and schema/portico.schema.json (from the config schema), and
 * the command reference in docs/cli.md (from the commander tree). `npm run docs` rewrites them;
 * test/docs/docs-sync.test.ts fails when the committed docs are stale.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { readClientResults, renderClientSection, replaceSection } from './clients-table.js';
import { fileURLToPath } from 'node:url';
import { dirname, resolve } from 'node:path';
import { z } from 'zod';
import type { Command } from 'commander';
import { ConfigSchema } from '../src/config/schema.js';
import { configJsonSchemaText } from '../src/config/json-schema.js';
import { allCommands, buildProgram, commandPath, EXIT_CODES } from '../src/cli/program.js';
import { ERROR_CATALOG } from '../src/errors/catalog.js';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');

export function errorTable(): string {
  const rows = Object.entries(ERROR_CATALOG).map(
    ([code, e]) => `| \`${code}\` | ${e.status} | \`${e.type}\` | ${e.retryable ? 'yes' : 'no'} | ${e.doc} |`,
  );
  return ['| code | HTTP | type | retryable | when, and what to do |', '|---|---|---|---|---|', ...rows].join(
    '\n',
  );
}

interface JsonSchema {
  type?: string | string[];
  properties?: Record<string, JsonSchema>;
  items?: JsonSchema;
  additionalProperties?: JsonSchema | boolean;
  anyOf?: JsonSchema[];
  oneOf?: JsonSchema[];
  enum?: unknown[];
  const?: unknown;
  default?: unknown;
  description?: string;
  format?: string;
  minimum?: number;
  maximum?: number;
  pattern?: string;
  required?: string[];
}

function typeOf(s: JsonSchema): string {
  if (s.const !== undefined) return `\`${JSON.stringify(s.const)}\``;
  if (s.enum) return s.enum.map((v) => `\`${String(v)}\``).join(' \\| ');
  const alts = s.anyOf ?? s.oneOf;
  if (alts) return alts.map(typeOf).join(' or ');
  if (s.type === 'array') return `list of ${s.items ? typeOf(s.items) : 'values'}`;
  if (
    s.type === 'object' &&
    !s.properties &&
    s.additionalProperties &&
    typeof s.additionalProperties === 'object'
  )
    return `map of ${typeOf(s.additionalProperties)}`;
  if (s.format === 'uri') return 'URL';
  return Array.isArray(s.type) ? s.type.join('/') : (s.type ?? 'any');
}

function rows(s: JsonSchema, path: string, out: string[], required: boolean): void {
  const alts = s.anyOf ?? s.oneOf;
  if (path) {
    const scalarDefault =
      s.default !== undefined &&
      (s.default === null || typeof s.default !== 'object' || Array.isArray(s.default));
    const def = scalarDefault ? `\`${JSON.stringify(s.default)}\`` : required ? 'required' : '';
    const lo = s.minimum !== undefined && s.minimum > -1e15 ? String(s.minimum) : '';
    const hi = s.maximum !== undefined && s.maximum < 1e15 ? String(s.maximum) : '';
    const range = lo || hi ? (hi ? ` (${lo}..${hi})` : ` (>= ${lo})`) : '';
    out.push(
      `| \`${path}\` | ${typeOf(s)}${range} | ${def} | ${(s.description ?? '').replaceAll('|', '\\|')} |`,
    );
  }
  if (s.properties) {
    for (const [k, v] of Object.entries(s.properties))
      rows(v, path ? `${path}.${k}` : k, out, s.required?.includes(k) ?? false);
  }
  if (s.type === 'array' && s.items) {
    if (s.items.properties || s.items.anyOf || s.items.oneOf)
      rows({ ...s.items, description: undefined, default: undefined }, `${path}[]`, out, false);
  }
  if (
    s.additionalProperties &&
    typeof s.additionalProperties === 'object' &&
    s.additionalProperties.properties
  ) {
    rows(s.additionalProperties, `${path}.<name>`, out, false);
  }
  if (alts) {
    alts.forEach((alt) => {
      if (!alt.properties) return;
      const disc = Object.entries(alt.properties).find(([, v]) => v.const !== undefined);
      const label = disc ? `${path} (${disc[0]}: ${String(disc[1].const)})` : path;
      for (const [k, v] of Object.entries(alt.properties)) {
        if (v.const !== undefined && disc && k === disc[0]) continue;
        rows(v, `${label}.${k}`, out, alt.required?.includes(k) ?? false);
      }
    });
  }
}

export function configTable(): string {
  const schema = z.toJSONSchema(ConfigSchema, { io: 'input', unrepresentable: 'any' }) as JsonSchema;
  const out: string[] = [];
  rows(schema, '', out, false);
  // Paths with a discriminator label repeat common fields per variant: keep them, they say which variant has what.
  return ['| key | type | default | description |', '|---|---|---|---|', ...out].join('\n');
}

export function replaceBetween(text: string, marker: string, body: string): string {
  const start = `<!-- generated:${marker}:start -->`;
  const end = `<!-- generated:${marker}:end -->`;
  const i = text.indexOf(start);
  const j = text.indexOf(end);
  if (i < 0 || j < 0) throw new Error(`markers for ${marker} not found`);
  return text.slice(0, i + start.length) + '\n' + body + '\n' + text.slice(j);
}

/** Every command's --help, from the commander tree (docs/cli.md). */
export function cliReference(): string {
  const program = buildProgram({ env: {}, out: () => undefined, err: () => undefined }, () => undefined);
  const help = (cmd: Command): string => {
    let text = '';
    cmd.configureOutput({ writeOut: (s) => (text += s) }).configureHelp({ helpWidth: 100 });
    cmd.outputHelp();
    return text.trimEnd();
  };
  const sections = allCommands(program)
    .filter((c) => c.name() !== 'help')
    .map((c) => `### \`${commandPath(c)}\`\n\n\`\`\`text\n${help(c)}\n\`\`\``);
  const codes = ['| exit code | meaning |', '|---|---|', ...EXIT_CODES.map(([c, d]) => `| ${c} | ${d} |`)];
  return [codes.join('\n'), ...sections].join('\n\n').replace(/\n{3,}/g, '\n\n');
}

export const GENERATED = [
  { file: 'docs/errors.md', marker: 'errors', render: errorTable },
  { file: 'docs/config.md', marker: 'config', render: configTable },
  { file: 'docs/cli.md', marker: 'cli', render: cliReference },
];

/** Files generated whole. */
export const GENERATED_FILES = [{ file: 'schema/portico.schema.json', render: configJsonSchemaText }];

if (process.argv[1] && fileURLToPath(import.meta.url) === resolve(process.argv[1])) {
  for (const g of GENERATED) {
    const path = resolve(root, g.file);
    writeFileSync(path, replaceBetween(readFileSync(path, 'utf8'), g.marker, g.render()));
    console.log(`updated ${g.file}`);
  }
  for (const g of GENERATED_FILES) {
    mkdirSync(dirname(resolve(root, g.file)), { recursive: true });
    writeFileSync(resolve(root, g.file), g.render());
    console.log(`updated ${g.file}`);
  }
  // The client-compatibility tables, from the suite's last results (test/clients writes them).
  const results = readClientResults(resolve(root, 'test-results/clients'));
  if (results.length > 0) {
    const path = resolve(root, 'docs/providers.md');
    let doc = readFileSync(path, 'utf8');
    for (const r of results) doc = replaceSection(doc, r.client, renderClientSection(r));
    writeFileSync(path, doc);
    console.log(`updated docs/providers.md (${results.map((r) => r.client).join(', ')})`);
  } else
    console.log(
      'docs/providers.md unchanged: no test-results/clients (run node scripts/run-tests.mjs test/clients)',
    );
}
