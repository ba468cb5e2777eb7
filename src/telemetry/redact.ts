/**
 * PII redaction for audit bodies and (per tenant) prompts sent upstream: card numbers (13-19
 * digits, spaces or dashes allowed, Luhn-valid only), US social security numbers, phone numbers
 * (international and North American formats), e-mail addresses, plus configured patterns.
 * Replacements name what was removed, e.g. `[REDACTED_EMAIL]`.
 */
import type { RedactPattern } from '../config/schema.js';

const CARD = /\b(?:\d[ -]?){12,18}\d\b/g;
const SSN = /\b(?!000|666|9\d\d)\d{3}-(?!00)\d{2}-(?!0000)\d{4}\b/g;
const PHONE = /(?<![\w+])(?:\+\d{1,3}[ .-]?)?(?:\(\d{2,4}\)[ .-]?|\d{2,4}[ .-])\d{3,4}[ .-]\d{3,4}\b/g;
const EMAIL = /\b[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}\b/g;

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

  constructor(patterns: readonly RedactPattern[] = []) {
    this.#extra = patterns.map((p) => ({ name: p.name, re: new RegExp(p.regex, 'g') }));
  }

  redact(text: string): string {
    let out = text.replace(CARD, (m) => (luhnValid(m.replace(/[ -]/g, '')) ? '[REDACTED_CARD]' : m));
    out = out.replace(SSN, '[REDACTED_SSN]');
    out = out.replace(EMAIL, '[REDACTED_EMAIL]');
    out = out.replace(PHONE, '[REDACTED_PHONE]');
    for (const { name, re } of this.#extra) out = out.replace(re, `[REDACTED_${name}]`);
    return out;
  }
}

export const defaultRedactor = new Redactor();
