/**
 * Where a JSON text is invalid, said without quoting it. V8's JSON.parse messages quote the text
 * around the fault (`Unexpected token 'm', ..."content": my SSN is "...`), and an error message is
 * kept in the request log and the audit file, where no prompt text may appear with audit bodies off
 * (docs/tracing-and-audit.md). This scanner runs only once JSON.parse has failed; it walks the text
 * without recursion (any depth) and names the first fault by kind and place.
 */

export interface JsonFault {
  /** What is wrong, in words that quote nothing of the text. */
  problem: string;
  /** 0-based offset (UTF-16 code units) of the fault. */
  offset: number;
  /** 1-based line and column of the fault. */
  line: number;
  column: number;
}

const VALUE = 0;
const KEY = 1;
const AFTER = 2;
const ARRAY = 0;
const OBJECT = 1;

function isWs(c: number): boolean {
  return c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d;
}
function isDigit(c: number): boolean {
  return c >= 0x30 && c <= 0x39;
}
function isHex(c: number): boolean {
  return isDigit(c) || (c >= 0x41 && c <= 0x46) || (c >= 0x61 && c <= 0x66);
}

/** The first fault of a JSON text, or undefined when the scanner finds none. */
export function findJsonFault(s: string): JsonFault | undefined {
  const n = s.length;
  const stack: number[] = [];
  let i = 0;
  let mode = VALUE;
  const fault = (problem: string, at: number): JsonFault => {
    const end = Math.min(at, n);
    let line = 1;
    let lineStart = 0;
    for (let k = 0; k < end; k++) {
      if (s.charCodeAt(k) === 0x0a) {
        line++;
        lineStart = k + 1;
      }
    }
    return { problem, offset: end, line, column: end - lineStart + 1 };
  };
  const ended = (): JsonFault => fault('the body ends before the JSON value is complete', n);
  const skipWs = (): void => {
    while (i < n && isWs(s.charCodeAt(i))) i++;
  };
  /** i at the opening quote; on success i is past the closing one. */
  const str = (): JsonFault | undefined => {
    i++;
    for (;;) {
      if (i >= n) return ended();
      const c = s.charCodeAt(i);
      if (c === 0x22) {
        i++;
        return undefined;
      }
      if (c === 0x5c) {
        const e = s.charCodeAt(i + 1);
        if (i + 1 >= n) return ended();
        if (e === 0x75) {
          for (let k = 2; k < 6; k++) {
            if (i + k >= n) return ended();
            if (!isHex(s.charCodeAt(i + k)))
              return fault('a \\u escape in a string needs four hex digits', i);
          }
          i += 6;
        } else if ('"\\/bfnrt'.includes(s.charAt(i + 1))) i += 2;
        else return fault('an invalid escape sequence in a string', i);
        continue;
      }
      if (c < 0x20)
        return fault('a control character (such as a raw line break or tab) inside a string; escape it', i);
      i++;
    }
  };
  const num = (): JsonFault | undefined => {
    const start = i;
    if (s.charCodeAt(i) === 0x2d) i++;
    if (i >= n) return ended();
    if (s.charCodeAt(i) === 0x30) i++;
    else if (isDigit(s.charCodeAt(i))) while (i < n && isDigit(s.charCodeAt(i))) i++;
    else return fault('a malformed number', start);
    if (s.charCodeAt(i) === 0x2e) {
      i++;
      if (i >= n) return ended();
      if (!isDigit(s.charCodeAt(i))) return fault('a malformed number', start);
      while (i < n && isDigit(s.charCodeAt(i))) i++;
    }
    const e = s.charCodeAt(i);
    if (e === 0x65 || e === 0x45) {
      i++;
      const sign = s.charCodeAt(i);
      if (sign === 0x2b || sign === 0x2d) i++;
      if (i >= n) return ended();
      if (!isDigit(s.charCodeAt(i))) return fault('a malformed number', start);
      while (i < n && isDigit(s.charCodeAt(i))) i++;
    }
    return undefined;
  };
  for (;;) {
    skipWs();
    if (mode === VALUE) {
      if (i >= n) return ended();
      const c = s.charCodeAt(i);
      if (c === 0x7b || c === 0x5b) {
        i++;
        skipWs();
        if (s.charCodeAt(i) === (c === 0x7b ? 0x7d : 0x5d)) {
          i++;
          mode = AFTER;
        } else {
          stack.push(c === 0x7b ? OBJECT : ARRAY);
          mode = c === 0x7b ? KEY : VALUE;
        }
        continue;
      }
      let f: JsonFault | undefined;
      if (c === 0x22) f = str();
      else if (c === 0x2d || isDigit(c)) f = num();
      else {
        const word = ['true', 'false', 'null'].find((w) => w.charCodeAt(0) === c);
        const rest = s.slice(i, i + (word?.length ?? 0));
        if (word !== undefined && rest === word) i += word.length;
        else if (word !== undefined && i + rest.length >= n && word.startsWith(rest)) return ended();
        else
          return fault(
            'an unexpected character where a value should start (strings need double quotes; true, false and null are lower-case)',
            i,
          );
      }
      if (f) return f;
      mode = AFTER;
      continue;
    }
    if (mode === KEY) {
      if (i >= n) return ended();
      if (s.charCodeAt(i) !== 0x22) return fault('expected a property name in double quotes', i);
      const f = str();
      if (f) return f;
      skipWs();
      if (i >= n) return ended();
      if (s.charCodeAt(i) !== 0x3a) return fault('expected ":" after a property name', i);
      i++;
      mode = VALUE;
      continue;
    }
    // AFTER a value.
    const top = stack[stack.length - 1];
    if (top === undefined) return i < n ? fault('unexpected text after the JSON value', i) : undefined;
    if (i >= n) return ended();
    const c = s.charCodeAt(i);
    if (c === 0x2c) {
      i++;
      mode = top === OBJECT ? KEY : VALUE;
    } else if (c === (top === OBJECT ? 0x7d : 0x5d)) {
      i++;
      stack.pop();
    } else
      return fault(
        top === OBJECT
          ? 'expected "," or "}" after a property value'
          : 'expected "," or "]" after an array element',
        i,
      );
  }
}

/** "…: <problem> at line L, column C" for a text JSON.parse refused; nothing of the text is quoted. */
export function describeJsonFault(s: string): string {
  const f = findJsonFault(s);
  return f ? `${f.problem} at line ${f.line}, column ${f.column}` : 'it could not be parsed';
}
