/**
 * Backend presets: what differs between upstreams that speak the OpenAI or Anthropic protocol,
 * as data, so a backend in config is one line (`preset: openrouter, model: ..., api_key: ${KEY}`).
 * The config schema resolves a preset with resolvePreset() and lets explicit fields override it.
 * See docs/providers.md for each preset's sources and caveats.
 */
import type { ChatCompletionRequest } from './openai-types.js';

export const PRESET_NAMES = [
  'vllm',
  'llamacpp',
  'ollama',
  'openai',
  'openrouter',
  'together',
  'anthropic',
] as const;
export type PresetName = (typeof PRESET_NAMES)[number];

/** Which adapter speaks to it: src/providers/openai-compatible or src/providers/anthropic. */
export type PresetProtocol = 'openai' | 'anthropic';

export interface PresetAuth {
  /** bearer: `Authorization: Bearer <key>`; x-api-key: `x-api-key: <key>`; none: no header. */
  style: 'bearer' | 'x-api-key' | 'none';
  /** Whether config must give an api_key (local servers usually run without one). */
  required: boolean;
}

export interface OptionalHeader {
  /** HTTP header name. */
  header: string;
  doc: string;
}

export interface PresetQuirks {
  /** On streams, set stream_options.include_usage=true so usage arrives in the last chunk. */
  forceIncludeUsage: boolean;
  /** Field that carries the output cap upstream. OpenAI's newer models reject max_tokens. */
  maxTokensField: 'max_tokens' | 'max_completion_tokens';
  /** Upstream requires an output cap (Anthropic); the adapter sends default_max_tokens if absent. */
  requiresMaxTokens: boolean;
  supportsEmbeddings: boolean;
  supportsRerank: boolean;
  /** Path (relative to baseUrl) of the rerank endpoint when supported. */
  rerankPath?: string;
  /** Legacy /completions. */
  supportsCompletions: boolean;
  /** Request fields the upstream rejects; the adapter removes them before sending. */
  dropParams: readonly string[];
}

export interface ProviderPreset {
  name: PresetName;
  /** Human name for docs and the console. */
  label: string;
  protocol: PresetProtocol;
  /** Default base URL (OpenAI protocol: includes /v1). */
  baseUrl: string;
  auth: PresetAuth;
  /** Headers always sent. */
  headers: Readonly<Record<string, string>>;
  /** Headers config may set by key (e.g. `headers: {referer: ...}` for OpenRouter attribution). */
  optionalHeaders: Readonly<Record<string, OptionalHeader>>;
  quirks: PresetQuirks;
}

const LOCAL_QUIRKS: PresetQuirks = {
  forceIncludeUsage: true,
  maxTokensField: 'max_tokens',
  requiresMaxTokens: false,
  supportsEmbeddings: true,
  supportsRerank: false,
  supportsCompletions: true,
  dropParams: [],
};

export const PRESETS: Readonly<Record<PresetName, ProviderPreset>> = {
  vllm: {
    name: 'vllm',
    label: 'vLLM (OpenAI-compatible server)',
    protocol: 'openai',
    baseUrl: 'http://127.0.0.1:8000/v1',
    auth: { style: 'bearer', required: false },
    headers: {},
    optionalHeaders: {},
    // vLLM serves /v1/embeddings for embedding models and /v1/rerank (Jina/Cohere shape) for
    // cross-encoders; top_k, min_p, repetition_penalty pass through.
    quirks: { ...LOCAL_QUIRKS, supportsRerank: true, rerankPath: '/rerank' },
  },
  llamacpp: {
    name: 'llamacpp',
    label: 'llama.cpp server (llama-server)',
    protocol: 'openai',
    baseUrl: 'http://127.0.0.1:8080/v1',
    auth: { style: 'bearer', required: false },
    headers: {},
    optionalHeaders: {},
    // Embeddings need --embeddings, rerank needs --reranking (served at /v1/rerank).
    quirks: { ...LOCAL_QUIRKS, supportsRerank: true, rerankPath: '/rerank' },
  },
  ollama: {
    name: 'ollama',
    label: 'Ollama (OpenAI-compatible endpoint)',
    protocol: 'openai',
    baseUrl: 'http://127.0.0.1:11434/v1',
    // Ollama ignores the key; some proxies in front of it want one.
    auth: { style: 'bearer', required: false },
    headers: {},
    optionalHeaders: {},
    quirks: { ...LOCAL_QUIRKS },
  },
  openai: {
    name: 'openai',
    label: 'OpenAI',
    protocol: 'openai',
    baseUrl: 'https://api.openai.com/v1',
    auth: { style: 'bearer', required: true },
    headers: {},
    optionalHeaders: {
      organization: { header: 'OpenAI-Organization', doc: 'Organization id to bill.' },
      project: { header: 'OpenAI-Project', doc: 'Project id to bill.' },
    },
    quirks: {
      forceIncludeUsage: true,
      // o-series and gpt-5 models reject max_tokens; max_completion_tokens works for all chat models.
      maxTokensField: 'max_completion_tokens',
      requiresMaxTokens: false,
      supportsEmbeddings: true,
      supportsRerank: false,
      supportsCompletions: true,
      dropParams: ['top_k'],
    },
  },
  openrouter: {
    name: 'openrouter',
    label: 'OpenRouter',
    protocol: 'openai',
    baseUrl: 'https://openrouter.ai/api/v1',
    auth: { style: 'bearer', required: true },
    headers: {},
    optionalHeaders: {
      referer: { header: 'HTTP-Referer', doc: 'Your site URL, for attribution on openrouter.ai.' },
      title: { header: 'X-Title', doc: 'Your app name, for attribution on openrouter.ai.' },
    },
    quirks: {
      forceIncludeUsage: true,
      maxTokensField: 'max_tokens',
      requiresMaxTokens: false,
      supportsEmbeddings: false,
      supportsRerank: false,
      supportsCompletions: true,
      dropParams: [],
    },
  },
  together: {
    name: 'together',
    label: 'Together AI',
    protocol: 'openai',
    baseUrl: 'https://api.together.xyz/v1',
    auth: { style: 'bearer', required: true },
    headers: {},
    optionalHeaders: {},
    quirks: {
      forceIncludeUsage: true,
      maxTokensField: 'max_tokens',
      requiresMaxTokens: false,
      supportsEmbeddings: true,
      supportsRerank: true,
      rerankPath: '/rerank',
      supportsCompletions: true,
      dropParams: [],
    },
  },
  anthropic: {
    name: 'anthropic',
    label: 'Anthropic (Messages API)',
    protocol: 'anthropic',
    baseUrl: 'https://api.anthropic.com',
    auth: { style: 'x-api-key', required: true },
    headers: { 'anthropic-version': '2023-06-01' },
    optionalHeaders: {
      beta: { header: 'anthropic-beta', doc: 'Comma-separated beta feature names.' },
    },
    quirks: {
      forceIncludeUsage: false,
      maxTokensField: 'max_tokens',
      requiresMaxTokens: true,
      supportsEmbeddings: false,
      supportsRerank: false,
      supportsCompletions: true,
      dropParams: [],
    },
  },
};

const ALIASES: Readonly<Record<string, PresetName>> = {
  'llama.cpp': 'llamacpp',
  'llama-cpp': 'llamacpp',
  'llama-server': 'llamacpp',
  'together-ai': 'together',
  claude: 'anthropic',
};

export function isPresetName(name: string): name is PresetName {
  return (PRESET_NAMES as readonly string[]).includes(name);
}

/** Looks a preset up by name or alias (case-insensitive); throws with the list of valid names. */
export function resolvePreset(name: string): ProviderPreset {
  const key = name.trim().toLowerCase();
  const canonical = isPresetName(key) ? key : ALIASES[key];
  if (canonical === undefined) {
    throw new Error(`Unknown provider preset '${name}'. Known presets: ${PRESET_NAMES.join(', ')}.`);
  }
  return PRESETS[canonical];
}

/**
 * Headers for one backend: auth in the preset's style, fixed headers, and optional headers that
 * config set by key (unknown keys throw so a typo in config is reported, not ignored).
 */
export function presetHeaders(
  preset: ProviderPreset,
  apiKey: string | undefined,
  optional: Readonly<Record<string, string>> = {},
): Record<string, string> {
  const out: Record<string, string> = { ...preset.headers };
  if (apiKey !== undefined && apiKey !== '') {
    if (preset.auth.style === 'bearer') out['authorization'] = `Bearer ${apiKey}`;
    else if (preset.auth.style === 'x-api-key') out['x-api-key'] = apiKey;
  } else if (preset.auth.required) {
    throw new Error(`Preset '${preset.name}' needs an api_key.`);
  }
  for (const [k, v] of Object.entries(optional)) {
    const h = preset.optionalHeaders[k];
    if (h === undefined) {
      const known = Object.keys(preset.optionalHeaders);
      throw new Error(
        `Preset '${preset.name}' has no optional header '${k}'${known.length ? ` (known: ${known.join(', ')})` : ''}.`,
      );
    }
    out[h.header.toLowerCase()] = v;
  }
  return out;
}

/**
 * Applies a preset's request quirks to an outgoing OpenAI-protocol chat request (a copy; the
 * input is not changed): forces include_usage on streams, renames the output cap field, drops
 * parameters the upstream rejects. Pure; the OpenAI-compatible adapter calls it per request.
 */
export function applyChatQuirks(q: PresetQuirks, req: ChatCompletionRequest): ChatCompletionRequest {
  const out: ChatCompletionRequest = { ...req };
  if (q.forceIncludeUsage && out.stream === true) {
    out.stream_options = { ...(out.stream_options ?? {}), include_usage: true };
  }
  if (q.maxTokensField === 'max_completion_tokens') {
    if (out.max_tokens != null && out.max_completion_tokens == null)
      out.max_completion_tokens = out.max_tokens;
    delete out.max_tokens;
  } else if (out.max_tokens == null && out.max_completion_tokens != null) {
    out.max_tokens = out.max_completion_tokens;
    delete out.max_completion_tokens;
  }
  for (const p of q.dropParams) delete out[p];
  return stripAnthropicExtensions(out);
}

/**
 * The Anthropic extensions of the canonical format (openai-types.ts: `thinking`, assistant
 * `thinking_blocks`, `cache_control` on parts, tools, messages and tool calls) mean nothing to an
 * OpenAI-protocol server, and OpenAI's own API rejects unknown fields: they are removed. Nothing is
 * copied when none is present (the common case).
 */
export function stripAnthropicExtensions(req: ChatCompletionRequest): ChatCompletionRequest {
  const has = (o: object): boolean => 'cache_control' in o;
  const dirtyMessage = (m: ChatCompletionRequest['messages'][number]): boolean =>
    has(m) ||
    'thinking_blocks' in m ||
    (Array.isArray(m.content) && m.content.some(has)) ||
    (m.tool_calls ?? []).some(has);
  const dirtyMessages = req.messages.some(dirtyMessage);
  const dirtyTools = (req.tools ?? []).some(has);
  if (!('thinking' in req) && !dirtyMessages && !dirtyTools) return req;
  const out: ChatCompletionRequest = { ...req };
  delete out['thinking'];
  if (dirtyMessages)
    out.messages = req.messages.map((m) => {
      if (!dirtyMessage(m)) return m;
      const { cache_control: _cc, thinking_blocks: _tb, ...rest } = m;
      if (Array.isArray(rest.content))
        rest.content = rest.content.map((p) => {
          if (!has(p)) return p;
          const { cache_control: _pc, ...part } = p as { cache_control?: unknown; type: string };
          return part;
        });
      if (rest.tool_calls) rest.tool_calls = rest.tool_calls.map(({ cache_control: _tc, ...tc }) => tc);
      return rest;
    });
  if (dirtyTools) out.tools = (req.tools ?? []).map(({ cache_control: _t, ...t }) => t);
  return out;
}
