/**
 * Expected-answer checks. `compileExpectation` builds the check once (regexes are compiled at load,
 * not per response); the returned function gives null on pass or a reason a person can read.
 */
import type { Expectation } from './types.js';

export type Check = (text: string) => string | null;

function stripCodeFence(text: string): string {
  const m = /```(?:json)?\s*([\s\S]*?)```/i.exec(text);
  return (m?.[1] ?? text).trim();
}

export function compileExpectation(expect: Expectation | null): Check {
  if (expect === null) return () => null;
  if ('contains_any' in expect) {
    const needles = expect.contains_any.map((s) => s.toLowerCase());
    return (text) => {
      const hay = text.toLowerCase();
      return needles.some((n) => hay.includes(n))
        ? null
        : `contains none of [${expect.contains_any.join(', ')}]`;
    };
  }
  if ('contains_all' in expect) {
    const needles = expect.contains_all.map((s) => s.toLowerCase());
    return (text) => {
      const hay = text.toLowerCase();
      const missing = needles.filter((n) => !hay.includes(n));
      return missing.length === 0 ? null : `missing [${missing.join(', ')}]`;
    };
  }
  if ('regex' in expect) {
    const re = new RegExp(expect.regex, expect.flags ?? '');
    return (text) => (re.test(text) ? null : `does not match /${expect.regex}/${expect.flags ?? ''}`);
  }
  if ('json' in expect) {
    const required = expect.json.required ?? [];
    return (text) => {
      let value: unknown;
      try {
        value = JSON.parse(stripCodeFence(text));
      } catch {
        return 'not valid JSON';
      }
      if (typeof value !== 'object' || value === null || Array.isArray(value)) return 'JSON is not an object';
      const missing = required.filter((k) => !(k in value));
      return missing.length === 0 ? null : `JSON lacks keys [${missing.join(', ')}]`;
    };
  }
  return (text) => (text.trim().length > 0 ? null : 'empty answer');
}
