/**
 * `POST /v1/messages/count_tokens` (Anthropic's token counting): the prompt as it would go upstream
 * — tenant system prompt included — counted by the backend when it can count (Anthropic backends
 * answer exactly, without spending tokens), else by Portico's tokenizer. Authenticated and limited
 * like any request, routed like a chat request to the model; not accounted (nothing is generated).
 */
import type { ChatCompletionRequest } from '../providers/openai-types.js';
import { countMessages } from '../tenancy/tokens.js';
import type { RequestContext } from './context.js';
import { dispatchUnary } from './dispatch.js';
import { resolveModel } from './resolve-model.js';
import type { PipelineDeps } from './run.js';
import { shapeMessages } from './shape-prompt.js';
import type { TenantRuntime } from './snapshot.js';
import { stageSync } from '../telemetry/tracing.js';
import { redactMessages } from './redact-upstream.js';

export async function runCountTokens(
  deps: PipelineDeps,
  ctx: RequestContext,
  tenant: TenantRuntime,
  req: ChatCompletionRequest,
): Promise<{ input_tokens: number }> {
  const pool = stageSync(ctx, 'route', () => resolveModel(ctx, tenant, req.model, req.user));
  let messages = shapeMessages(tenant, req.messages);
  if (tenant.redactPiiUpstream && deps.redactor) messages = redactMessages(deps.redactor, messages);
  const shaped: ChatCompletionRequest = { ...req, messages };
  const n = await dispatchUnary(deps, ctx, pool, (b, pctx) =>
    b.provider.countTokens ? b.provider.countTokens(shaped, pctx) : Promise.resolve(countMessages(messages)),
  );
  return { input_tokens: n };
}
