/**
 * OpenAI's legacy function calling (`functions`, `function_call`, `role: "function"` messages),
 * still sent by older SDKs and frameworks. The request is rewritten to tools at validation, so
 * every provider (Anthropic, engine, sim, any OpenAI-compatible server) sees one format; the answer
 * goes back in the shape the client used: `message.function_call` and `finish_reason:
 * "function_call"`, streamed as `delta.function_call` fragments.
 */
import type {
  ChatCompletionChunk,
  ChatCompletionResponse,
  FinishReason,
  ToolCall,
} from '../providers/openai-types.js';

type Json = Record<string, unknown>;

function isObject(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Did the client use the legacy form (and no `tools`)? Checked on the raw body. */
export function usesLegacyFunctions(body: unknown): boolean {
  if (!isObject(body) || (body.tools !== undefined && body.tools !== null)) return false;
  return Array.isArray(body.functions) || (body.function_call !== undefined && body.function_call !== null);
}

/** Rewrites legacy fields of a chat body in place to their tools equivalents. */
export function adoptLegacyFunctions(b: Json): void {
  const fns = b.functions;
  if (Array.isArray(fns)) {
    if (b.tools === undefined) b.tools = fns.map((f: unknown) => ({ type: 'function', function: f }));
    delete b.functions;
    // A legacy answer carries one function call.
    b.parallel_tool_calls ??= false;
  }
  const fc = b.function_call;
  if (fc !== undefined) {
    if (b.tool_choice === undefined) {
      if (fc === 'none' || fc === 'auto') b.tool_choice = fc;
      else if (isObject(fc) && typeof fc.name === 'string')
        b.tool_choice = { type: 'function', function: { name: fc.name } };
      else b.tool_choice = fc; // validation names what is wrong with it
    }
    delete b.function_call;
  }
  const msgs = b.messages;
  if (!Array.isArray(msgs)) return;
  // role "function" results answer the latest assistant function_call of the same name. (The map
  // is made on the first legacy message: a request without one allocates nothing here.)
  let lastIdByName: Map<string, string> | undefined;
  for (let i = 0; i < msgs.length; i++) {
    const m: unknown = msgs[i];
    if (!isObject(m)) continue;
    const call = m.function_call;
    if (m.role === 'assistant' && isObject(call) && typeof call.name === 'string') {
      const id = `call_legacy_${i}`;
      (lastIdByName ??= new Map()).set(call.name, id);
      if (m.tool_calls === undefined) {
        const tc: ToolCall = {
          id,
          type: 'function',
          function: {
            name: call.name,
            arguments: typeof call.arguments === 'string' ? call.arguments : '{}',
          },
        };
        m.tool_calls = [tc];
      }
      delete m.function_call;
    } else if (m.role === 'function') {
      const name = typeof m.name === 'string' ? m.name : '';
      m.role = 'tool';
      m.tool_call_id = lastIdByName?.get(name) ?? `call_legacy_${name}`;
    }
  }
}

function legacyFinish(f: FinishReason): FinishReason {
  return f === 'tool_calls' ? 'function_call' : f;
}

/** A tools-shaped answer, back in the legacy shape. */
export function toLegacyResponse(res: ChatCompletionResponse): ChatCompletionResponse {
  return {
    ...res,
    choices: res.choices.map((c) => {
      const { tool_calls: calls, ...message } = c.message;
      const first = calls?.[0];
      return {
        ...c,
        message: first
          ? { ...message, function_call: { name: first.function.name, arguments: first.function.arguments } }
          : message,
        finish_reason: legacyFinish(c.finish_reason),
      };
    }),
  };
}

/** Streamed tool-call fragments, back as `function_call` fragments (first call only, as legacy had). */
export async function* toLegacyChunks(
  chunks: AsyncIterable<ChatCompletionChunk>,
): AsyncGenerator<ChatCompletionChunk> {
  for await (const c of chunks) {
    yield {
      ...c,
      choices: c.choices.map((ch) => {
        const { tool_calls: calls, ...delta } = ch.delta;
        const first = calls?.find((t) => t.index === 0);
        const fn = first?.function;
        return {
          ...ch,
          delta: fn
            ? {
                ...delta,
                function_call: {
                  ...(fn.name !== undefined ? { name: fn.name } : {}),
                  arguments: fn.arguments ?? '',
                },
              }
            : delta,
          finish_reason: legacyFinish(ch.finish_reason),
        };
      }),
    };
  }
}
