/**
 * Stage: shape prompt. Injects the tenant's system prompt according to its policy:
 * - prepend: the tenant prompt comes first; the caller's own system messages follow it.
 * - replace: the caller's system/developer messages are dropped; the tenant prompt alone sets behaviour.
 * - none: messages go upstream unchanged.
 */
import type { ChatMessage } from '../providers/openai-types.js';
import type { TenantRuntime } from './snapshot.js';

export function shapeMessages(tenant: TenantRuntime, messages: ChatMessage[]): ChatMessage[] {
  const prompt = tenant.systemPrompt;
  switch (tenant.promptPolicy) {
    case 'none':
      return messages;
    case 'replace': {
      const rest = messages.filter((m) => m.role !== 'system' && m.role !== 'developer');
      return prompt ? [{ role: 'system', content: prompt }, ...rest] : rest;
    }
    case 'prepend':
    default:
      return prompt ? [{ role: 'system', content: prompt }, ...messages] : messages;
  }
}
