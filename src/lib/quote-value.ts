/**
 * A client's value as an error message may show it. Error messages are kept in the request log and
 * the audit file, where no prompt text may appear with audit bodies off (docs/tracing-and-audit.md):
 * a value is quoted only when it looks like a name (a role, a type, an option: a letter, then
 * letters, digits, "_", ".", ":" or "-", at most 40), since a misplaced field may hold prompt text;
 * anything else is described by its kind and size.
 */
const NAME = /^[A-Za-z_][A-Za-z0-9_.:-]{0,39}$/;

export function quoteValue(v: unknown): string {
  if (typeof v === 'string')
    return NAME.test(v) ? JSON.stringify(v) : `a string of ${v.length} character${v.length === 1 ? '' : 's'}`;
  if (typeof v === 'number' || typeof v === 'boolean' || v === null || v === undefined) return String(v);
  if (Array.isArray(v)) return 'an array';
  return `a${typeof v === 'object' ? 'n object' : ` ${typeof v}`}`;
}
