/**
 * What fake upstreams answer in the routing tests: an OpenAI chat answer and stream chunk, and an
 * Anthropic SSE event (failover, circuit-stream-probe, anthropic-resilience).
 */

/** One OpenAI `chat.completion.chunk` SSE event carrying `content`. */
export const openaiChunk = (content: string, finish: string | null = null): string =>
  `data: ${JSON.stringify({ id: 'c', object: 'chat.completion.chunk', created: 1, model: 'm', choices: [{ index: 0, delta: { content }, finish_reason: finish }] })}\n\n`;

/** A whole OpenAI chat answer, "ok", with usage. */
export const OPENAI_ANSWER = JSON.stringify({
  id: 'c',
  object: 'chat.completion',
  created: 1,
  model: 'm',
  choices: [{ index: 0, message: { role: 'assistant', content: 'ok' }, finish_reason: 'stop' }],
  usage: { prompt_tokens: 1, completion_tokens: 1, total_tokens: 2 },
});

/** One Anthropic Messages SSE event of `type`. */
export const anthropicEvent = (type: string, data: Record<string, unknown>): string =>
  `event: ${type}\ndata: ${JSON.stringify({ type, ...data })}\n\n`;
