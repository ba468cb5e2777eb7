/**
 * PII redaction for audit bodies and (per tenant) prompts sent upstream: card numbers (13-19
 * digits, spaces or dashes allowed, Luhn-valid only), US social security numbers, phone numbers
 * (international and North American formats), e-mail addresses, plus configured patterns.
 * Replacements name what was removed, e.g. `[REDACTED_EMAIL]`.
 *
 * A number also starts after a JSON escape (`\n`, `\t`, any backslash and letter): strings that
 * hold JSON text (tool-call arguments, function outputs) write a newline as those two characters,
 * and a plain word boundary would not see the number behind the letter. Parsed bodies are redacted
 * string by string (`redactJson`), never as their serialised text.
 */
import type { RedactPattern } from '../config/schema.js';

// `(?<!(?<!\\)\w)`: a word boundary before a digit, where a letter after a backslash (a JSON
// escape such as `\n`) is no word. Nested lookbehinds, not an alternation: as fast as `\b`.
const CARD = /(?<!(?<!\\)\w)(?:\d[ -]?){12,18}\d\b/g;
const SSN = /(?<!(?<!\\)\w)(?!000|666|9\d\d)\d{3}-(?!00)\d{2}-(?!0000)\d{4}\b/g;
const PHONE = /(?<!(?<!\\)[\w+])(?:\+\d{1,3}[ .-]?)?(?:\(\d{2,4}\)[ .-]?|\d{2,4}[ .-])\d{3,4}[ .-]\d{3,4}\b/g;
// Not started on the letter of an escape (`\nbob@…` keeps its `\n`), nor inside a local part.
const EMAIL = /(?<!(?<!\\)[A-Za-z0-9._%+-]|\\)[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}\b/g;
/** Every built-in pattern needs a digit (card, SSN, phone) or an `@` (e-mail). */
const MAYBE_PII = /[\d@]/;

export function luhnValid(digits: string): boolean {
  let sum = 0;
  let double = false;
  for (let i = digits.length - 1; i >= 0; i--) {
    let d = digits.charCodeAt(i) - 48;
    if (double) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
    double = !double;
  }
  return digits.length >= 13 && sum % 10 === 0;
}

export class Redactor {
  readonly #extra: Array<{ name: string; re: RegExp }>;
  readonly #replacer: (key: string, value: unknown) => unknown;

  constructor(patterns: readonly RedactPattern[] = []) {
    this.#extra = patterns.map((p) => ({ name: p.name, re: new RegExp(p.regex, 'g') }));
    this.#replacer = (_key, value) => this.#redactValue(value);
  }

  /** Could `text` hold something to redact? Without configured patterns only a digit or `@` can. */
  #mayMatch(text: string): boolean {
    return this.#extra.length > 0 || MAYBE_PII.test(text);
  }

  /** One value met while serialising: a string redacted, an object with its keys redacted. */
  #redactValue(value: unknown): unknown {
    if (typeof value === 'string') return this.redact(value);
    if (value === null || typeof value !== 'object' || Array.isArray(value)) return value;
    const obj = value as Record<string, unknown>;
    let changed = false;
    for (const key in obj)
      if (this.#mayMatch(key) && this.redact(key) !== key) {
        changed = true;
        break;
      }
    if (!changed) return value;
    const copy = Object.create(null) as Record<string, unknown>;
    for (const key in obj) copy[this.#mayMatch(key) ? this.redact(key) : key] = obj[key];
    return copy;
  }

  /**
   * A parsed JSON value (a request body) as JSON text with every string in it redacted, values
   * and object keys, each as the text it is: in the serialised text a newline is the two
   * characters `\n`, and a number right after it would not start at a word boundary.
   */
  redactJson(value: unknown): string {
    return JSON.stringify(value, this.#replacer);
  }

  redact(text: string): string {
    if (!this.#mayMatch(text)) return text;
    let out = text.replace(CARD, (m) => (luhnValid(m.replace(/[ -]/g, '')) ? '[REDACTED_CARD]' : m));
    out = out.replace(SSN, '[REDACTED_SSN]');
    if (text.includes('@')) out = out.replace(EMAIL, '[REDACTED_EMAIL]');
    out = out.replace(PHONE, '[REDACTED_PHONE]');
    for (const { name, re } of this.#extra) out = out.replace(re, `[REDACTED_${name}]`);
    return out;
  }
}

export const defaultRedactor = new Redactor();
