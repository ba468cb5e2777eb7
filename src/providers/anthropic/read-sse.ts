/**
 * A byte stream of server-sent events -> parsed messages, with eventsource-parser (a real SSE
 * decoder: CRLF, multi-line data, comments, split chunks), then Anthropic's JSON payloads typed.
 */
import { createParser, type EventSourceMessage } from 'eventsource-parser';
import { PorticoError } from '../../errors/portico-error.js';
import type { AnthropicStreamEvent } from './types.js';

/** Upper bound on a single buffered event; a broken upstream must not grow memory without end. */
const MAX_EVENT_CHARS = 8 * 1024 * 1024;

/** `backendId` names the backend in a malformed stream's error (a protocol failure, for dispatch). */
export async function* readSseMessages(
  body: AsyncIterable<Uint8Array | string>,
  backendId = 'anthropic',
): AsyncGenerator<EventSourceMessage> {
  const queue: EventSourceMessage[] = [];
  let parseError: Error | undefined;
  const parser = createParser({
    maxBufferSize: MAX_EVENT_CHARS,
    onEvent: (m) => queue.push(m),
    // Only an event over the size bound is fatal: an unknown field or a bad `retry:` value is
    // ignored, as the SSE spec says (it used to end the stream as malformed: review, 2026-12-07).
    onError: (e) => {
      if (e.type === 'max-buffer-size-exceeded') parseError = e;
    },
  });
  const decoder = new TextDecoder();
  for await (const chunk of body) {
    parser.feed(typeof chunk === 'string' ? chunk : decoder.decode(chunk, { stream: true }));
    if (parseError)
      throw new PorticoError('upstream_error', `Malformed event stream from backend: ${parseError.message}`, {
        upstream: { backend: backendId, class: 'protocol' },
      });
    while (queue.length > 0) yield queue.shift() as EventSourceMessage;
  }
  parser.feed(decoder.decode());
  parser.reset({ consume: true });
  while (queue.length > 0) yield queue.shift() as EventSourceMessage;
}

/** Parses each message's JSON; the `type` inside the data is authoritative (the event name mirrors it). */
export async function* decodeAnthropicEvents(
  messages: AsyncIterable<EventSourceMessage>,
  backendId = 'anthropic',
): AsyncGenerator<AnthropicStreamEvent> {
  for await (const m of messages) {
    if (m.data === '' || m.data === '[DONE]') continue;
    let v: unknown;
    try {
      v = JSON.parse(m.data);
    } catch {
      throw new PorticoError(
        'upstream_error',
        `Backend sent an event that is not JSON (event: ${m.event ?? 'message'}).`,
        { upstream: { backend: backendId, class: 'protocol' } },
      );
    }
    if (typeof v !== 'object' || v === null || typeof (v as { type?: unknown }).type !== 'string') {
      // `event: error` bodies always carry type 'error'; anything else without a type is noise.
      if (m.event === 'error') yield { type: 'error', error: { type: 'api_error', message: m.data } };
      continue;
    }
    yield v as AnthropicStreamEvent;
  }
}
