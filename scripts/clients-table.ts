/**
 * The client-compatibility table in docs/providers.md, generated from the results the suite in
 * test/clients/ writes to test-results/clients/<client>.json — never edited by hand. `npm run docs`
 * rewrites the sections between the markers; each suite file checks its own section is current.
 */
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

export const PROVIDER_COLUMNS = ['sim', 'openai-compatible', 'anthropic'] as const;
export type ProviderColumn = (typeof PROVIDER_COLUMNS)[number];

export interface CaseResult {
  feature: string;
  provider: ProviderColumn;
  status: 'pass' | 'fail' | 'n/a';
  note?: string;
}

export interface ClientResults {
  client: string;
  title: string;
  cases: CaseResult[];
}

const MARK = { pass: '✓', fail: '✗', 'n/a': '—' } as const;

/** One client's table: a row per feature (in first-seen order), a column per provider kind. */
export function renderClientSection(r: ClientResults): string {
  const features: string[] = [];
  for (const c of r.cases) if (!features.includes(c.feature)) features.push(c.feature);
  const notes: string[] = [];
  const lines = [
    `**${r.title}**`,
    '',
    `| feature | ${PROVIDER_COLUMNS.join(' | ')} |`,
    `|---|${PROVIDER_COLUMNS.map(() => '---').join('|')}|`,
  ];
  for (const f of features) {
    const cells = PROVIDER_COLUMNS.map((p) => {
      const c = r.cases.find((x) => x.feature === f && x.provider === p);
      if (!c) return ' ';
      if (!c.note) return MARK[c.status];
      let i = notes.indexOf(c.note);
      if (i < 0) i = notes.push(c.note) - 1;
      return `${MARK[c.status]} [${i + 1}]`;
    });
    lines.push(`| ${f} | ${cells.join(' | ')} |`);
  }
  if (notes.length > 0) {
    lines.push('');
    notes.forEach((n, i) => lines.push(`[${i + 1}] ${n}`));
  }
  return lines.join('\n');
}

function markers(client: string): { start: string; end: string } {
  return { start: `<!-- clients:${client}:start -->`, end: `<!-- clients:${client}:end -->` };
}

/** The committed section of one client in the doc, or undefined when its markers are missing. */
export function sectionOf(doc: string, client: string): string | undefined {
  const { start, end } = markers(client);
  const a = doc.indexOf(start);
  const b = doc.indexOf(end);
  if (a < 0 || b < a) return undefined;
  return doc.slice(a + start.length, b).trim();
}

/** The doc with one client's section replaced. */
export function replaceSection(doc: string, client: string, body: string): string {
  const { start, end } = markers(client);
  const a = doc.indexOf(start);
  const b = doc.indexOf(end);
  if (a < 0 || b < a) throw new Error(`docs/providers.md has no ${start} ... ${end} markers`);
  return `${doc.slice(0, a + start.length)}\n${body}\n${doc.slice(b)}`;
}

/** Every client's results found under dir (test-results/clients). */
export function readClientResults(dir: string): ClientResults[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((f) => f.endsWith('.json'))
    .sort()
    .map((f) => JSON.parse(readFileSync(join(dir, f), 'utf8')) as ClientResults);
}
