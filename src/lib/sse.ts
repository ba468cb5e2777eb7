/**
 * Server-Sent Events: encoding for responses and a decoder for upstream streams, built on
 * eventsource-parser (a spec-compliant parser) so chunk boundaries, comments, CRLF and multi-line
 * data fields are handled correctly.
 */
import { createParser, type EventSourceMessage } from 'eventsource-parser';

export function encodeSseData(data: string): string {
  return `data: ${data}\n\n`;
}

export function encodeSseEvent(event: string, data: string): string {
  return `event: ${event}\ndata: ${data}\n\n`;
}

export const SSE_DONE = 'data: [DONE]\n\n';

export class SseProtocolError extends Error {
  override name = 'SseProtocolError';
}

/**
 * Decode a byte stream into SSE messages. Yields as soon as each event is complete. Throws
 * SseProtocolError if the stream is cut in the middle of an event, or if the buffered
 * unterminated event grows past `maxEventBytes`.
 */
export async function* decodeSse(
  body: AsyncIterable<Uint8Array | string>,
  maxEventBytes = 8 * 1024 * 1024,
): AsyncGenerator<EventSourceMessage> {
  const queue: EventSourceMessage[] = [];
  let pending = 0;
  const parser = createParser({
    onEvent: (ev) => {
      queue.push(ev);
      pending = 0;
    },
  });
  const decoder = new TextDecoder();
  for await (const chunk of body) {
    const text = typeof chunk === 'string' ? chunk : decoder.decode(chunk, { stream: true });
    pending += text.length;
    if (pending > maxEventBytes) throw new SseProtocolError(`SSE event larger than ${maxEventBytes} bytes`);
    parser.feed(text);
    while (queue.length > 0) yield queue.shift() as EventSourceMessage;
  }
  const tail = decoder.decode();
  if (tail) parser.feed(tail);
  while (queue.length > 0) yield queue.shift() as EventSourceMessage;
}
