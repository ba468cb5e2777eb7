/**
 * Sends one promptset record to an OpenAI-compatible server (or a team route) and classifies what
 * came back. Uses undici with a shared keep-alive Agent; streams are parsed with eventsource-parser.
 */
import { performance } from 'node:perf_hooks';
import { createParser } from 'eventsource-parser';
import { request, type Dispatcher } from 'undici';
import type { PromptRecord } from '../promptset/types.js';
import type { ErrorClass, Target } from './types.js';
import { countText } from '../tenancy/tokens.js';

export interface SendOptions {
  baseUrl: string;
  key: string | undefined;
  target: Target;
  stream: boolean;
  timeoutMs: number;
  dispatcher: Dispatcher;
  /** Aborts in-flight requests when the run is cancelled. */
  signal?: AbortSignal;
  /** Extra request headers (e.g. x-correlation-id). */
  headers?: Record<string, string>;
}

export interface SendResult {
  status: number | null;
  text: string;
  error_class: Exclude<ErrorClass, 'check_failed'> | null;
  reason: string | null;
  latency_ms: number;
  ttft_ms: number | null;
  prompt_tokens: number;
  completion_tokens: number;
}

const CONNECT_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EPIPE',
  'UND_ERR_SOCKET',
  'UND_ERR_CLOSED',
]);

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function joinUrl(base: string, path: string): string {
  return base.replace(/\/+$/, '') + path;
}

interface Usage {
  prompt: number | null;
  completion: number | null;
}

function readUsage(body: Record<string, unknown>): Usage {
  const u = body['usage'];
  if (!isRecord(u)) return { prompt: null, completion: null };
  const p = u['prompt_tokens'];
  const c = u['completion_tokens'];
  return { prompt: typeof p === 'number' ? p : null, completion: typeof c === 'number' ? c : null };
}

/** The answer text from a chat completion, a completion, or a team-route body. */
export function extractText(body: unknown): string | null {
  if (!isRecord(body)) return null;
  const choices = body['choices'];
  if (Array.isArray(choices) && isRecord(choices[0])) {
    const c = choices[0];
    const msg = c['message'];
    if (isRecord(msg) && typeof msg['content'] === 'string') return msg['content'];
    if (typeof c['text'] === 'string') return c['text'];
  }
  for (const k of ['text', 'completion', 'response', 'output', 'answer', 'prediction']) {
    const v = body[k];
    if (typeof v === 'string') return v;
  }
  return null;
}

function classifyThrown(
  err: unknown,
  timedOut: boolean,
): { error_class: 'timeout' | 'connect' | 'invalid_response'; reason: string } {
  if (timedOut) return { error_class: 'timeout', reason: 'request timed out' };
  const e = err as { code?: unknown; message?: unknown; name?: unknown; cause?: { code?: unknown } };
  const code = typeof e.code === 'string' ? e.code : typeof e.cause?.code === 'string' ? e.cause.code : '';
  const message = typeof e.message === 'string' ? e.message : String(err);
  if (
    code === 'UND_ERR_CONNECT_TIMEOUT' ||
    code === 'UND_ERR_HEADERS_TIMEOUT' ||
    code === 'UND_ERR_BODY_TIMEOUT'
  ) {
    return { error_class: 'timeout', reason: code };
  }
  if (CONNECT_CODES.has(code)) return { error_class: 'connect', reason: code };
  return { error_class: 'connect', reason: message.slice(0, 200) };
}

function httpClass(status: number): 'http_4xx' | 'http_5xx' {
  return status >= 500 ? 'http_5xx' : 'http_4xx';
}

function errorMessage(raw: string): string {
  try {
    const body: unknown = JSON.parse(raw);
    if (isRecord(body) && isRecord(body['error']) && typeof body['error']['message'] === 'string')
      return body['error']['message'];
  } catch {
    // not JSON: fall through to the raw text
  }
  return raw.slice(0, 200);
}

export async function sendRecord(rec: PromptRecord, opts: SendOptions): Promise<SendResult> {
  const headers: Record<string, string> = { 'content-type': 'application/json', ...opts.headers };
  if (opts.key) headers['authorization'] = `Bearer ${opts.key}`;
  let url: string;
  let payload: Record<string, unknown>;
  if (opts.target.kind === 'team') {
    url = joinUrl(opts.baseUrl, `/api/${encodeURIComponent(opts.target.team)}/predict`);
    payload = { prompt: rec.prompt, max_tokens: rec.max_tokens };
  } else {
    url = joinUrl(opts.baseUrl, '/v1/chat/completions');
    payload = {
      model: opts.target.model,
      messages: [{ role: 'user', content: rec.prompt }],
      max_tokens: rec.max_tokens,
    };
    if (opts.stream) {
      payload['stream'] = true;
      payload['stream_options'] = { include_usage: true };
    }
  }
  const ac = new AbortController();
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    ac.abort();
  }, opts.timeoutMs);
  const onOuterAbort = (): void => ac.abort();
  opts.signal?.addEventListener('abort', onOuterAbort, { once: true });
  const t0 = performance.now();
  let ttft: number | null = null;
  const done = (r: Omit<SendResult, 'latency_ms' | 'ttft_ms'>): SendResult => ({
    ...r,
    latency_ms: Math.round((performance.now() - t0) * 100) / 100,
    ttft_ms: ttft === null ? null : Math.round(ttft * 100) / 100,
  });
  try {
    const res = await request(url, {
      method: 'POST',
      headers,
      body: JSON.stringify(payload),
      dispatcher: opts.dispatcher,
      signal: ac.signal,
    });
    const ct = String(res.headers['content-type'] ?? '');
    if (res.statusCode >= 400) {
      const raw = await res.body.text();
      return done({
        status: res.statusCode,
        text: '',
        error_class: httpClass(res.statusCode),
        reason: `HTTP ${res.statusCode}: ${errorMessage(raw)}`,
        prompt_tokens: rec.prompt_tokens,
        completion_tokens: 0,
      });
    }
    if (opts.stream && opts.target.kind === 'chat' && ct.includes('text/event-stream')) {
      let text = '';
      let usage: Usage = { prompt: null, completion: null };
      let bad: string | null = null;
      const parser = createParser({
        onEvent(ev) {
          if (ev.data === '[DONE]') return;
          let chunk: unknown;
          try {
            chunk = JSON.parse(ev.data);
          } catch {
            bad = 'stream event is not JSON';
            return;
          }
          if (!isRecord(chunk)) return;
          if (isRecord(chunk['error'])) {
            bad = `stream error: ${String(chunk['error']['message'] ?? 'unknown')}`;
            return;
          }
          const choices = chunk['choices'];
          if (Array.isArray(choices) && isRecord(choices[0]) && isRecord(choices[0]['delta'])) {
            const content = choices[0]['delta']['content'];
            if (typeof content === 'string' && content.length > 0) {
              if (ttft === null) ttft = performance.now() - t0;
              text += content;
            }
          }
          const u = readUsage(chunk);
          if (u.completion !== null) usage = u;
        },
      });
      const decoder = new TextDecoder();
      for await (const part of res.body) parser.feed(decoder.decode(part as Uint8Array, { stream: true }));
      parser.feed(decoder.decode());
      if (bad !== null)
        return done({
          status: res.statusCode,
          text,
          error_class: 'invalid_response',
          reason: bad,
          prompt_tokens: rec.prompt_tokens,
          completion_tokens: 0,
        });
      return done({
        status: res.statusCode,
        text,
        error_class: null,
        reason: null,
        prompt_tokens: usage.prompt ?? rec.prompt_tokens,
        completion_tokens: usage.completion ?? countText(text),
      });
    }
    const raw = await res.body.text();
    let body: unknown;
    try {
      body = JSON.parse(raw);
    } catch {
      return done({
        status: res.statusCode,
        text: '',
        error_class: 'invalid_response',
        reason: 'response is not JSON',
        prompt_tokens: rec.prompt_tokens,
        completion_tokens: 0,
      });
    }
    const text = extractText(body);
    if (text === null)
      return done({
        status: res.statusCode,
        text: '',
        error_class: 'invalid_response',
        reason: 'no answer text in the response',
        prompt_tokens: rec.prompt_tokens,
        completion_tokens: 0,
      });
    const usage = isRecord(body) ? readUsage(body) : { prompt: null, completion: null };
    return done({
      status: res.statusCode,
      text,
      error_class: null,
      reason: null,
      prompt_tokens: usage.prompt ?? rec.prompt_tokens,
      completion_tokens: usage.completion ?? countText(text),
    });
  } catch (err) {
    const c = classifyThrown(err, timedOut);
    return done({
      status: null,
      text: '',
      error_class: c.error_class,
      reason: c.reason,
      prompt_tokens: rec.prompt_tokens,
      completion_tokens: 0,
    });
  } finally {
    clearTimeout(timer);
    opts.signal?.removeEventListener('abort', onOuterAbort);
  }
}

/** Asks the judge model to score an answer 1-5; returns null when no number could be read. */
export async function judgeAnswer(
  rec: PromptRecord,
  answer: string,
  opts: Omit<SendOptions, 'target' | 'stream'> & { judgeModel: string },
): Promise<number | null> {
  const prompt =
    'You are grading an AI assistant. Rate how correct and helpful the answer is for the question, ' +
    'from 1 (wrong or useless) to 5 (correct and complete). Reply with the number only.\n\n' +
    `Question:\n${rec.prompt}\n\nAnswer:\n${answer}\n\nScore (1-5):`;
  const judged = await sendRecord(
    { ...rec, prompt, max_tokens: 8 },
    { ...opts, target: { kind: 'chat', model: opts.judgeModel }, stream: false },
  );
  if (judged.error_class !== null) return null;
  return parseJudgeScore(judged.text);
}

export function parseJudgeScore(text: string): number | null {
  const m = /(?<![\d.])([1-5])(?:\.\d+)?(?![\d])/.exec(text);
  return m ? Number(m[1]) : null;
}
