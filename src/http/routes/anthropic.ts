/**
 * The inbound Anthropic API: `POST /v1/messages`, so clients using the Anthropic SDK can call any
 * Portico model. The request is translated to the canonical OpenAI chat shape and runs the same
 * pipeline as /v1/chat/completions (tenant prompt, limits, quotas, cache, routing, accounting);
 * answers, stream events and errors are translated back to the Messages API's shapes.
 */
import type { FastifyInstance } from 'fastify';
import type { Gateway } from '../../app.js';
import type { PorticoError } from '../../errors/portico-error.js';
import {
  anthropicRequestToOpenAI,
  encodeAnthropicSse,
  openAIChunksToAnthropicEvents,
  openAIErrorToAnthropic,
  openAIResponseToAnthropic,
} from '../../providers/anthropic/index.js';
import type { AnthropicSseEvent } from '../../providers/anthropic/types.js';
import { runChat } from '../../pipeline/run.js';
import { sendSse, type SseFormat } from '../sse.js';
import { tenantRoute } from './openai.js';

export const ANTHROPIC_PATH = '/v1/messages';

const ANTHROPIC_SSE: SseFormat<AnthropicSseEvent> = {
  encode: encodeAnthropicSse,
  end: '',
  error: (pe: PorticoError) => `event: error\ndata: ${JSON.stringify(openAIErrorToAnthropic(pe))}\n\n`,
};

export function registerAnthropicRoutes(app: FastifyInstance, gw: Gateway): void {
  app.post(
    ANTHROPIC_PATH,
    tenantRoute(gw, 'messages', ANTHROPIC_PATH, async (ctx, tenant, request, reply) => {
      const oreq = anthropicRequestToOpenAI(request.body);
      const out = await runChat(gw.deps, ctx, tenant, oreq);
      if (out.kind === 'json') return openAIResponseToAnthropic(out.body, { model: oreq.model });
      const events = openAIChunksToAnthropicEvents(out.chunks, {
        model: oreq.model,
        ...(ctx.promptTokensEstimate !== undefined ? { inputTokensHint: ctx.promptTokensEstimate } : {}),
      });
      await sendSse(gw.deps, reply, ctx, events, ANTHROPIC_SSE);
      return reply;
    }),
  );
}
