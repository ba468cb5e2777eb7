/**
 * Text every state store keeps as given: no NUL character (Postgres refuses it in TEXT) and no
 * unpaired UTF-16 surrogate (Postgres JSONB refuses "\ud800", TEXT would store U+FFFD). The state
 * stores refuse other text (state/validate-input.ts); the config refuses it in the ids that reach
 * them (config/schema.ts).
 */

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

export function isStorableText(s: string): boolean {
  return !s.includes('\u0000') && !LONE_SURROGATE.test(s);
}
