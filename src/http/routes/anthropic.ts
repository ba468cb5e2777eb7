/**
 * The inbound Anthropic API: `POST /v1/messages`, so clients using the Anthropic SDK can call any
 * Portico model. The request is translated to the canonical OpenAI chat shape and runs the same
 * pipeline as /v1/chat/completions (tenant prompt, limits, quotas, cache, routing, accounting);
 * answers, stream events and errors are translated back to the Messages API's shapes.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { ANTHROPIC_HEADERS, type ChatCompletionRequest } from '../../providers/openai-types.js';
import { runCountTokens } from '../../pipeline/count-tokens.js';
import type { Gateway } from '../../app.js';
import { PorticoError } from '../../errors/portico-error.js';
import {
  anthropicRequestToOpenAI,
  encodeAnthropicSse,
  openAIChunksToAnthropicEvents,
  openAIErrorToAnthropic,
  openAIResponseToAnthropic,
} from '../../providers/anthropic/index.js';
import type { AnthropicSseEvent } from '../../providers/anthropic/types.js';
import { billedUsage, runChat } from '../../pipeline/run.js';
import { sendSse, type SseFormat } from '../sse.js';
import { tenantRoute } from './openai.js';

export const ANTHROPIC_PATH = '/v1/messages';
export const COUNT_TOKENS_PATH = '/v1/messages/count_tokens';

/** The Anthropic API headers a client sent, for Anthropic backends (see ANTHROPIC_HEADERS). */
function anthropicHeaders(request: FastifyRequest): Record<string, string> | undefined {
  const out: Record<string, string> = {};
  for (const name of ['anthropic-beta', 'anthropic-version'] as const) {
    const v = request.headers[name];
    const value = Array.isArray(v) ? v.join(',') : v;
    // Header values are forwarded: keep them to the characters the Anthropic API uses.
    if (typeof value === 'string' && value !== '' && value.length <= 1024 && /^[\w.,\- ]+$/.test(value))
      out[name] = value;
  }
  return Object.keys(out).length > 0 ? out : undefined;
}

/** The Anthropic request in the canonical shape, with the client's Anthropic headers attached. */
function canonical(request: FastifyRequest, body: unknown): ChatCompletionRequest {
  const oreq = anthropicRequestToOpenAI(body);
  const headers = anthropicHeaders(request);
  if (headers) oreq[ANTHROPIC_HEADERS] = headers;
  return oreq;
}

const ANTHROPIC_SSE: SseFormat<AnthropicSseEvent> = {
  encode: encodeAnthropicSse,
  end: '',
  error: (pe: PorticoError) => `event: error\ndata: ${JSON.stringify(openAIErrorToAnthropic(pe))}\n\n`,
};

export function registerAnthropicRoutes(app: FastifyInstance, gw: Gateway): void {
  app.post(
    ANTHROPIC_PATH,
    tenantRoute(gw, 'messages', ANTHROPIC_PATH, async (ctx, tenant, request, reply) => {
      const oreq = canonical(request, request.body);
      const out = await runChat(gw.deps, ctx, tenant, oreq);
      // A backend that reports no usage: the client is told the counts the ledger bills, not 0/0.
      if (out.kind === 'json')
        return openAIResponseToAnthropic(out.body, {
          model: oreq.model,
          ...(out.body.usage ? {} : { usage: billedUsage(ctx) }),
        });
      if (out.kind === 'raw' || out.kind === 'bytes')
        throw new PorticoError('internal_error', 'unexpected byte stream for /v1/messages');
      const events = openAIChunksToAnthropicEvents(out.chunks, {
        model: oreq.model,
        ...(ctx.promptTokensEstimate !== undefined ? { inputTokensHint: ctx.promptTokensEstimate } : {}),
        usage: () => billedUsage(ctx),
      });
      await sendSse(gw.deps, reply, ctx, events, ANTHROPIC_SSE);
      return reply;
    }),
  );
  app.post(
    COUNT_TOKENS_PATH,
    tenantRoute(gw, 'count_tokens', COUNT_TOKENS_PATH, async (ctx, tenant, request) => {
      // count_tokens takes a Messages request without max_tokens.
      const body = request.body;
      const withMax =
        typeof body === 'object' && body !== null && !Array.isArray(body) && !('max_tokens' in body)
          ? { ...body, max_tokens: 1 }
          : body;
      return runCountTokens(gw.deps, ctx, tenant, canonical(request, withMax));
    }),
  );
}
