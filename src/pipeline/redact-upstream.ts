/**
 * Stage (per tenant, `redact_pii_upstream: true`): PII in prompts is replaced before the request
 * leaves Portico — text content of every message (string content and text parts) and completion
 * prompts. The tenant's own system prompt is redacted too; images and tool definitions are not
 * touched.
 */
import type { ChatMessage, ContentPart } from '../providers/openai-types.js';
import type { Redactor } from '../telemetry/redact.js';

function redactPart(r: Redactor, p: ContentPart): ContentPart {
  return p.type === 'text' && typeof p.text === 'string' ? { ...p, text: r.redact(p.text) } : p;
}

export function redactMessages(r: Redactor, messages: ChatMessage[]): ChatMessage[] {
  return messages.map((m) => {
    if (typeof m.content === 'string') return { ...m, content: r.redact(m.content) };
    if (Array.isArray(m.content)) return { ...m, content: m.content.map((p) => redactPart(r, p)) };
    return m;
  });
}

/** Text prompts only: token ids cannot be redacted (runCompletion refuses them for such tenants). */
export function redactPrompt(r: Redactor, prompt: string | string[]): string | string[] {
  return typeof prompt === 'string' ? r.redact(prompt) : prompt.map((p) => r.redact(p));
}
