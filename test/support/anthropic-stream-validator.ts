/**
 * Checks a sequence of Anthropic stream events against the order the Messages streaming spec
 * defines (https://docs.anthropic.com/en/api/messages-streaming). Used by unit tests of the
 * inbound transformer and usable by end-to-end tests of POST /v1/messages.
 */
import assert from 'node:assert/strict';

export interface SseLike {
  event: string;
  data: unknown;
}

function typeOf(d: unknown): string {
  return typeof d === 'object' && d !== null && typeof (d as { type?: unknown }).type === 'string'
    ? (d as { type: string }).type
    : '';
}

/** Throws (assert) on the first violation; returns the reassembled tool inputs per block index. */
export function assertValidAnthropicStream(events: readonly SseLike[]): {
  text: string;
  toolInputs: Map<number, string>;
} {
  assert.ok(events.length >= 2, 'a stream has at least message_start and message_stop (or error)');
  assert.equal(events[0]?.event, 'message_start', 'first event is message_start');
  let open: { index: number; kind: string } | undefined;
  let nextIndex = 0;
  let sawDelta = false;
  let text = '';
  const toolInputs = new Map<number, string>();
  for (const [i, e] of events.entries()) {
    assert.equal(typeOf(e.data), e.event, `event ${i}: name matches data.type`);
    const d = e.data as Record<string, unknown>;
    switch (e.event) {
      case 'message_start': {
        assert.equal(i, 0, 'message_start only first');
        const m = d['message'] as Record<string, unknown>;
        assert.equal(m['type'], 'message');
        assert.equal(m['role'], 'assistant');
        assert.deepEqual(m['content'], []);
        assert.equal(typeof (m['usage'] as Record<string, unknown>)['input_tokens'], 'number');
        break;
      }
      case 'ping':
        break;
      case 'content_block_start': {
        assert.equal(open, undefined, `event ${i}: block started while block ${open?.index} is open`);
        assert.equal(sawDelta, false, 'no block after message_delta');
        assert.equal(d['index'], nextIndex, `event ${i}: block indices count up from 0`);
        const b = d['content_block'] as Record<string, unknown>;
        open = { index: nextIndex++, kind: String(b['type']) };
        if (b['type'] === 'text') assert.equal(b['text'], '');
        if (b['type'] === 'tool_use') {
          assert.equal(typeof b['id'], 'string');
          assert.ok(String(b['name']).length > 0, 'tool_use has a name');
          assert.deepEqual(b['input'], {});
          toolInputs.set(open.index, '');
        }
        break;
      }
      case 'content_block_delta': {
        assert.ok(open, `event ${i}: delta outside a block`);
        assert.equal(d['index'], open.index, `event ${i}: delta for the open block`);
        const delta = d['delta'] as Record<string, unknown>;
        if (open.kind === 'text') {
          assert.equal(delta['type'], 'text_delta');
          text += String(delta['text']);
        } else if (open.kind === 'tool_use') {
          assert.equal(delta['type'], 'input_json_delta');
          toolInputs.set(open.index, (toolInputs.get(open.index) ?? '') + String(delta['partial_json']));
        }
        break;
      }
      case 'content_block_stop':
        assert.ok(open, `event ${i}: stop outside a block`);
        assert.equal(d['index'], open.index);
        open = undefined;
        break;
      case 'message_delta': {
        assert.equal(open, undefined, 'all blocks stopped before message_delta');
        assert.equal(sawDelta, false, 'one message_delta');
        sawDelta = true;
        const delta = d['delta'] as Record<string, unknown>;
        assert.ok(
          ['end_turn', 'max_tokens', 'stop_sequence', 'tool_use', 'pause_turn', 'refusal'].includes(
            String(delta['stop_reason']),
          ),
        );
        assert.equal(typeof (d['usage'] as Record<string, unknown>)['output_tokens'], 'number');
        break;
      }
      case 'message_stop':
        assert.equal(sawDelta, true, 'message_delta before message_stop');
        assert.equal(i, events.length - 1, 'message_stop is last');
        break;
      case 'error':
        assert.equal(i, events.length - 1, 'error is terminal');
        break;
      default:
        assert.fail(`event ${i}: unknown event '${e.event}'`);
    }
  }
  return { text, toolInputs };
}
