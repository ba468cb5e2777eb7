/**
 * Byte-level work on an OpenAI SSE stream that the gateway forwards as it arrives (pass-through):
 * find where complete events end, and act only on the events the gateway must act on — the usage
 * chunk, `[DONE]`, error events, `"usage":null` fields and the `model` value — found by cheap
 * `indexOf` scans before any JSON parse. Everything else is forwarded as the same bytes.
 *
 * The scans are sound because an upstream's event data is JSON: inside a JSON string every `"` is
 * escaped, so `"usage"`, `"error"` and `"model"` followed by a colon can only be keys, and
 * `data: [DONE]` at the start of a line can only be the sentinel.
 */

const LF2 = Buffer.from('\n\n');
const CRLF2 = Buffer.from('\r\n\r\n');
const USAGE = Buffer.from('"usage"');
const ERROR = Buffer.from('"error"');
const MODEL = Buffer.from('"model"');
const DONE = Buffer.from('[DONE]');

const SP = 0x20;
const TAB = 0x09;
const CR = 0x0d;
const LF = 0x0a;
const COLON = 0x3a;
const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const BRACE = 0x7b;
const COMMA = 0x2c;
const BRACKET = 0x5b;

/**
 * Index just past the last complete event in `buf` (0: none complete yet): the end of the last
 * `\n\n` or `\r\n\r\n`. Scanned backwards in JS: a read of an SSE stream nearly always ends
 * on an event's blank line, so this looks at a byte or two (two native `lastIndexOf` calls, one
 * of them over the whole read for a pattern an LF stream never has, cost more than that).
 */
export function completeEventsEnd(buf: Buffer): number {
  for (let i = buf.length - 1; i > 0; i--) {
    if (buf[i] !== LF) continue;
    if (buf[i - 1] === LF) return i + 1;
    if (i >= 3 && buf[i - 1] === CR && buf[i - 2] === LF && buf[i - 3] === CR) return i + 1;
  }
  return 0;
}

/** Call `fn(start, end)` for each event in buf[0, end) (an event includes its blank line). */
function forEachEvent(buf: Buffer, end: number, fn: (start: number, end: number) => boolean | void): void {
  let s = 0;
  while (s < end) {
    const a = buf.indexOf(LF2, s);
    const b = buf.indexOf(CRLF2, s);
    let e: number;
    if (a === -1 && b === -1) e = end;
    else if (b === -1 || (a !== -1 && a < b)) e = a + 2;
    else e = b + 4;
    if (e > end) e = end;
    if (fn(s, e) === false) return;
    s = e;
  }
}

function skipWs(buf: Buffer, i: number): number {
  while (i < buf.length) {
    const c = buf[i];
    if (c !== SP && c !== TAB && c !== CR && c !== LF) break;
    i++;
  }
  return i;
}

/** After a key ending at `i`: the index of its value, or -1 when no `:` follows (not a key). */
function valueAt(buf: Buffer, i: number): number {
  i = skipWs(buf, i);
  if (buf[i] !== COLON) return -1;
  return skipWs(buf, i + 1);
}

/** `i` at an opening quote: the index just past the closing one before `end`, or -1 if there is none. */
function stringEnd(buf: Buffer, i: number, end = buf.length): number {
  for (let j = i + 1; j < end; j++) {
    const c = buf[j];
    if (c === BACKSLASH) j++;
    else if (c === QUOTE) return j + 1;
  }
  return -1;
}

/** The `data` field of the event in buf[s, e) (data lines joined by \n, as SSE defines). */
export function eventData(buf: Buffer, s: number, e: number): string | undefined {
  const text = buf.toString('utf8', s, e);
  let data: string | undefined;
  for (const line of text.split(/\r\n|\r|\n/)) {
    if (!line.startsWith('data')) continue;
    let v: string;
    if (line.length === 4) v = '';
    else if (line.charCodeAt(4) !== COLON) continue;
    else v = line.charCodeAt(5) === SP ? line.slice(6) : line.slice(5);
    data = data === undefined ? v : `${data}\n${v}`;
  }
  return data;
}

/** Is the `[DONE]` at `i` a `data: [DONE]` (or `data:[DONE]`) line of its own? */
function isDoneLine(buf: Buffer, i: number): boolean {
  let j = i - 1;
  if (buf[j] === SP) j--;
  const lineStart = j - 4;
  if (
    j >= 4 &&
    buf[j] === COLON &&
    buf[lineStart] === 0x64 && // d
    buf[lineStart + 1] === 0x61 && // a
    buf[lineStart + 2] === 0x74 && // t
    buf[lineStart + 3] === 0x61 && // a
    (lineStart === 0 || buf[lineStart - 1] === LF || buf[lineStart - 1] === CR)
  ) {
    const after = buf[i + DONE.length];
    if (after === undefined || after === LF || after === CR) return true;
  }
  return false;
}

/** The data of an error event (`{"error": {...}}`, error not null) in buf[s, e), if it is one. */
function errorData(buf: Buffer, s: number, e: number): string | undefined {
  const k = buf.indexOf(ERROR, s);
  if (k === -1 || k >= e) return undefined;
  return errorEventData(buf, s, e);
}

/** errorData once an `"error"` key is known to be in buf[s, e). */
function errorEventData(buf: Buffer, s: number, e: number): string | undefined {
  const data = eventData(buf, s, e);
  if (data === undefined) return undefined;
  try {
    const parsed = JSON.parse(data) as { error?: unknown };
    return parsed.error !== undefined && parsed.error !== null ? data : undefined;
  } catch {
    return undefined;
  }
}

/** The data of the first complete event of `buf` if it is an error event (checked before retrying). */
export function firstEventError(buf: Buffer): string | undefined {
  if (buf.indexOf(ERROR) === -1) return undefined;
  const end = completeEventsEnd(buf);
  let found: string | undefined;
  forEachEvent(buf, end, (s, e) => {
    if (eventData(buf, s, e) === undefined) return true; // comments, keep-alives
    found = errorData(buf, s, e);
    return false;
  });
  return found;
}

export interface ScanOptions {
  /** The alias as a JSON string (`"alias"`): `model` values that differ are rewritten to it. */
  modelJson: Buffer | undefined;
  /** The client did not ask for usage: hide the usage-only chunk and drop `"usage":null` fields. */
  hideUsage: boolean;
}

/** What the scan found; it accumulates over a stream. */
export interface ScanState {
  /** The usage object's JSON, from the usage chunk. */
  usage?: unknown;
  /** `data: [DONE]` was seen: the upstream finished. */
  done: boolean;
  /** An error event's data: forwarding stops before it (the gateway writes its own). */
  errorData?: string;
  /** The first `model` value the upstream wrote that differed from the alias. */
  upstreamModel?: string;
  /** An event the gateway had to read was not JSON. */
  malformed?: boolean;
}

/**
 * The pieces of an edited read, as offsets into it: pairs (start, end), or (-1, -1) for the alias.
 * Scratch shared by every call (only the count is reset): the scans are synchronous and never
 * re-entered. Assembled into one buffer at the end (`assemble`): no Buffer view per piece and no
 * list of them per read.
 */
const pieces: number[] = [];
let piecesN = 0;

function piece(s: number, e: number): void {
  pieces[piecesN++] = s;
  pieces[piecesN++] = e;
}

/**
 * The edited bytes: `buf` itself when the pieces are all of it; else, when no piece has to move to
 * the right (the alias is no longer than the names it replaces, hidden parts only shrink it), buf
 * edited in place and cut to its new length (no allocation: the buffer is this read's own, and
 * nothing reads it again before it is written); else one new buffer.
 */
function assemble(buf: Buffer, alias: Buffer | undefined): Buffer {
  if (piecesN === 2 && pieces[0] === 0 && pieces[1] === buf.length) return buf;
  let size = 0;
  let inPlace = true;
  for (let k = 0; k < piecesN; k += 2) {
    const s = pieces[k] as number;
    if (s === -1) size += (alias as Buffer).length;
    else {
      if (size > s) inPlace = false;
      size += (pieces[k + 1] as number) - s;
    }
  }
  const out = inPlace ? buf : Buffer.allocUnsafe(size);
  let at = 0;
  for (let k = 0; k < piecesN; k += 2) {
    const s = pieces[k] as number;
    if (s === -1) at += (alias as Buffer).copy(out, at);
    else {
      const e = pieces[k + 1] as number;
      if (!inPlace) buf.copy(out, at, s, e);
      else if (at !== s) buf.copyWithin(at, s, e);
      at += e - s;
    }
  }
  return inPlace ? buf.subarray(0, at) : out;
}

/**
 * Replace each `"model": "<x>"` value that differs from `modelJson` in buf[s, e), as pieces. `at`:
 * the positions of `"model"` in `buf`, ascending (those outside [s, e) are skipped).
 */
function rewriteModels(
  buf: Buffer,
  s: number,
  e: number,
  modelJson: Buffer,
  st: ScanState,
  at: readonly number[],
  n: number,
): void {
  let from = s;
  let k = 0;
  while (k < n && (at[k] as number) < s) k++;
  while (k < n) {
    const i = at[k] as number;
    if (i >= e) break;
    // Where the next search starts: past the value when this is a key, else just past `i`.
    let next = i + 1;
    const v = valueAt(buf, i + MODEL.length);
    // A value not closed inside this event (a malformed upstream event) is left alone: its end
    // found further on would be a piece ending before it starts.
    const ve = v !== -1 && buf[v] === QUOTE ? stringEnd(buf, v, e) : -1;
    if (ve !== -1) {
      next = ve;
      if (ve - v !== modelJson.length || buf.compare(modelJson, 0, modelJson.length, v, ve) !== 0) {
        let ok = true;
        if (st.upstreamModel === undefined) {
          try {
            st.upstreamModel = JSON.parse(buf.toString('utf8', v, ve)) as string;
          } catch {
            ok = false; // not a JSON string (a bad escape): leave the event alone
            next = i + 1;
          }
        }
        if (ok) {
          piece(from, v);
          piece(-1, -1);
          from = ve;
        }
      }
    }
    while (k < n && (at[k] as number) < next) k++;
  }
  piece(from, e);
}

/** The first of at[0, n) (ascending) in [s, e), or -1. */
function firstIn(at: readonly number[], n: number, s: number, e: number): number {
  for (let k = 0; k < n; k++) {
    const i = at[k] as number;
    if (i >= e) return -1;
    if (i >= s) return i;
  }
  return -1;
}

/** Does `needle` occur wholly in buf[i, end)? (buf[i] already matched needle[0].) */
function matchesAt(buf: Buffer, i: number, needle: Buffer, end: number): boolean {
  const n = needle.length;
  if (i + n > end) return false;
  for (let j = 1; j < n; j++) if (buf[i + j] !== needle[j]) return false;
  return true;
}

/**
 * What one pass over a read found: positions in the first `<name>N` slots of each array. Scratch,
 * reused by every call (only counts are reset): scanEvents is synchronous and never re-entered.
 */
const usageAt: number[] = [];
const errorAt: number[] = [];
const modelAt: number[] = [];
const doneAt: number[] = [];
const eventEnds: number[] = [];
let usageN = 0;
let errorN = 0;
let modelN = 0;
let doneN = 0;
let endsN = 0;

/**
 * One forward pass over buf[0, end), in JS: where each event ends (where forEachEvent would split
 * them) and every occurrence of `"usage"`, `"error"`, `"model"` and `[DONE]`, ascending. It
 * replaces four native `indexOf` scans of every read (and two more per event, each to the end of
 * the read, on the reads that carry usage): each of those is a call into C++ that costs more than
 * this loop spends on a few hundred bytes.
 */
function indexRead(buf: Buffer, end: number): void {
  usageN = errorN = modelN = doneN = endsN = 0;
  let s = 0;
  for (let i = 0; i < end; i++) {
    const c = buf[i];
    if (c === QUOTE) {
      const d = buf[i + 1];
      if (d === 0x6d /* m */) {
        if (matchesAt(buf, i, MODEL, end)) modelAt[modelN++] = i;
      } else if (d === 0x75 /* u */) {
        if (matchesAt(buf, i, USAGE, end)) usageAt[usageN++] = i;
      } else if (d === 0x65 /* e */) {
        if (matchesAt(buf, i, ERROR, end)) errorAt[errorN++] = i;
      }
    } else if (c === LF) {
      if (
        (i > s && buf[i - 1] === LF) ||
        (i - 3 >= s && buf[i - 1] === CR && buf[i - 2] === LF && buf[i - 3] === CR)
      ) {
        eventEnds[endsN++] = i + 1;
        s = i + 1;
      }
    } else if (c === BRACKET && buf[i + 1] === 0x44 /* D */ && matchesAt(buf, i, DONE, end)) {
      doneAt[doneN++] = i;
    }
  }
  if (s < end) eventEnds[endsN++] = end;
}

/**
 * Scan complete events buf[0, end) and return the bytes to forward: `buf` itself when nothing needs
 * changing (the common case), else the edited bytes. An error event ends the forwarding
 * (`st.errorData`); the usage chunk's usage lands in `st.usage`.
 */
export function scanEvents(buf: Buffer, end: number, o: ScanOptions, st: ScanState): Buffer {
  const region = end === buf.length ? buf : buf.subarray(0, end);
  indexRead(region, end);
  if (!st.done)
    for (let k = 0; k < doneN; k++)
      if (isDoneLine(region, doneAt[k] as number)) {
        st.done = true;
        break;
      }
  const modelJson = modelN > 0 ? o.modelJson : undefined;
  if (usageN === 0 && errorN === 0) {
    if (!modelJson) return region;
    piecesN = 0;
    rewriteModels(region, 0, end, modelJson, st, modelAt, modelN);
    return assemble(region, modelJson);
  }
  piecesN = 0;
  let edited = false;
  let s = 0;
  // Counts copied: the JSON.parse calls below cannot re-enter indexRead, but the reader should not have to check.
  const ends = endsN;
  const errors = errorN;
  const usages = usageN;
  const models = modelN;
  for (let x = 0; x < ends; x++) {
    const e = eventEnds[x] as number;
    if (firstIn(errorAt, errors, s, e) !== -1) {
      const data = errorEventData(region, s, e);
      if (data !== undefined) {
        st.errorData = data;
        edited = true;
        break;
      }
    }
    let cut = -1;
    let cutEnd = -1;
    let hidden = false;
    const k = firstIn(usageAt, usages, s, e);
    if (k !== -1) {
      const v = valueAt(region, k + USAGE.length);
      if (region[v] === BRACE) {
        const data = eventData(region, s, e);
        try {
          const parsed = JSON.parse(data ?? '') as { usage?: unknown; choices?: unknown[] };
          st.usage = parsed.usage;
          // The usage-only chunk the client did not ask for.
          if (o.hideUsage && (!Array.isArray(parsed.choices) || parsed.choices.length === 0)) hidden = true;
        } catch {
          st.malformed = true;
        }
      } else if (o.hideUsage && v !== -1 && region.toString('latin1', v, v + 4) === 'null') {
        // `,"usage":null` (forced include_usage upstream): not shown to a client that did not ask.
        let c = k - 1;
        while (c > s && (region[c] === SP || region[c] === TAB)) c--;
        if (region[c] === COMMA) {
          cut = c;
          cutEnd = v + 4;
        }
      }
    }
    if (hidden) edited = true;
    else if (cut !== -1) {
      edited = true;
      if (modelJson) {
        rewriteModels(region, s, cut, modelJson, st, modelAt, models);
        rewriteModels(region, cutEnd, e, modelJson, st, modelAt, models);
      } else {
        piece(s, cut);
        piece(cutEnd, e);
      }
    } else if (modelJson) {
      const before = piecesN;
      rewriteModels(region, s, e, modelJson, st, modelAt, models);
      if (piecesN - before > 2) edited = true;
    } else piece(s, e);
    s = e;
  }
  if (!edited) return region;
  return assemble(region, modelJson);
}

/**
 * What a choice carries that the model generated and a usage-less answer is billed for: text,
 * reasoning, and tool-call arguments (an answer of tool calls alone is output too). A streamed
 * choice's `delta` and a whole answer's `message` have the same fields, so streamed and
 * non-streamed answers are counted alike.
 */
export function choiceText(choice: unknown): string {
  if (choice === null || typeof choice !== 'object') return '';
  const c = choice as { delta?: unknown; message?: unknown; text?: unknown };
  if (typeof c.text === 'string') return c.text;
  const d = (c.delta ?? c.message) as
    | {
        content?: unknown;
        reasoning_content?: unknown;
        reasoning?: unknown;
        tool_calls?: unknown;
        function_call?: { arguments?: unknown } | null;
      }
    | undefined;
  if (d === null || typeof d !== 'object') return '';
  let out = typeof d.content === 'string' ? d.content : '';
  if (typeof d.reasoning_content === 'string') out += d.reasoning_content;
  else if (typeof d.reasoning === 'string') out += d.reasoning;
  if (Array.isArray(d.tool_calls))
    for (const tc of d.tool_calls as Array<{ function?: { name?: unknown; arguments?: unknown } } | null>) {
      const f = tc?.function;
      if (typeof f?.name === 'string') out += f.name;
      if (typeof f?.arguments === 'string') out += f.arguments;
    }
  if (typeof d.function_call?.arguments === 'string') out += d.function_call.arguments;
  return out;
}

/** The text a stream delivered (see choiceText), decoded from the forwarded bytes. */
export function textOfSse(parts: readonly Buffer[]): string {
  const buf = parts.length === 1 ? (parts[0] as Buffer) : Buffer.concat(parts);
  let text = '';
  forEachEvent(buf, buf.length, (s, e) => {
    const data = eventData(buf, s, e);
    if (data === undefined || data === '' || data === '[DONE]') return true;
    try {
      const c = JSON.parse(data) as { choices?: unknown[] };
      if (Array.isArray(c.choices)) for (const choice of c.choices) text += choiceText(choice);
    } catch {
      // not a JSON event (a partial tail): nothing to count
    }
    return true;
  });
  return text;
}

/** The first `model` value in `buf` (the upstream's model name in its first chunk), if any. */
export function modelOf(buf: Buffer): string | undefined {
  let i = buf.indexOf(MODEL);
  while (i !== -1) {
    const v = valueAt(buf, i + MODEL.length);
    if (v !== -1 && buf[v] === QUOTE) {
      const ve = stringEnd(buf, v);
      if (ve === -1) return undefined;
      try {
        return JSON.parse(buf.toString('utf8', v, ve)) as string;
      } catch {
        return undefined;
      }
    }
    i = buf.indexOf(MODEL, i + 1);
  }
  return undefined;
}

/**
 * A JSON answer's `model` values set to `modelJson` (the alias as a JSON string): the edited bytes
 * (or `buf` itself) and the first differing name found.
 */
export function replaceModel(buf: Buffer, modelJson: Buffer): { body: Buffer; upstream?: string } {
  const st: ScanState = { done: false };
  const at: number[] = [];
  for (let i = buf.indexOf(MODEL); i !== -1; i = buf.indexOf(MODEL, i + 1)) at.push(i);
  piecesN = 0;
  rewriteModels(buf, 0, buf.length, modelJson, st, at, at.length);
  const body = assemble(buf, modelJson);
  return st.upstreamModel === undefined ? { body } : { body, upstream: st.upstreamModel };
}

/** `i` at an opening brace: the index just past its matching close (-1 if unbalanced). */
function objectEnd(buf: Buffer, i: number): number {
  let depth = 0;
  for (let j = i; j < buf.length; j++) {
    const c = buf[j];
    if (c === QUOTE) {
      const se = stringEnd(buf, j);
      if (se === -1) return -1;
      j = se - 1;
    } else if (c === BRACE) depth++;
    else if (c === 0x7d && --depth === 0) return j + 1;
  }
  return -1;
}

/**
 * The `usage` object of a JSON answer by a targeted scan (the last `"usage": {...}` key, which in
 * OpenAI answers is the top-level one), parsed alone; undefined when absent or not an object.
 */
export function usageOf(buf: Buffer): unknown {
  let k = buf.lastIndexOf(USAGE);
  while (k !== -1) {
    const v = valueAt(buf, k + USAGE.length);
    if (v !== -1 && buf[v] === BRACE) {
      const e = objectEnd(buf, v);
      if (e === -1) return undefined;
      try {
        return JSON.parse(buf.toString('utf8', v, e));
      } catch {
        return undefined;
      }
    }
    if (k === 0) break;
    k = buf.lastIndexOf(USAGE, k - 1);
  }
  return undefined;
}
