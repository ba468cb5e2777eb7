/**
 * Provider conformance: one table of cases, run identically against every registered adapter on
 * recorded fixtures replayed by a fake upstream (test/support/fake-upstream.ts). Register an
 * adapter from a module in test/conformance/providers/ (auto-discovered by providers.test.ts):
 *
 *   defineProviderConformance({
 *     name: 'openai-compatible',
 *     protocol: 'openai',
 *     fixturesDir: fileURLToPath(new URL('../../fixtures/providers/openai/', import.meta.url)),
 *     create: (baseUrl) => createOpenAICompatibleProvider({ id: 'conf', baseUrl, apiKey: 'k' }),
 *   });
 *
 * The fixtures of every adapter encode the SAME canonical answers (CANONICAL below), so the
 * gateway sees identical OpenAI-shaped results whatever protocol the backend speaks. Fixture
 * names each case needs are listed in CASE_FIXTURES; test/fixtures/providers/README.md explains.
 */
import type { Provider } from '../../src/providers/spec.js';
import type { ChatCompletionRequest, ToolDefinition } from '../../src/providers/openai-types.js';
import type { ErrorCode } from '../../src/errors/catalog.js';
import type { FakeProtocol, RecordedRequest } from '../support/fake-upstream.js';

export const CONFORMANCE_CASES = [
  'text',
  'multi-turn',
  'tool-call',
  'tool-result-turn',
  'stream-text',
  'stream-tool-call',
  'stream-error-status',
  'stream-error-event',
  'abort-mid-stream',
  'context-headers',
  'health',
  'error-invalid-request',
  'error-auth',
  'error-permission',
  'error-not-found',
  'error-too-large',
  'error-rate-limit',
  'error-server',
  'error-overloaded',
  'error-connect-refused',
  'error-timeout',
] as const;
export type ConformanceCase = (typeof CONFORMANCE_CASES)[number];

/** Fixture (basename, without .json/.sse) each case replays. */
export const CASE_FIXTURES: Record<ConformanceCase, string> = {
  text: 'text',
  'multi-turn': 'multi-turn',
  'tool-call': 'tool-call',
  'tool-result-turn': 'tool-result',
  'stream-text': 'stream-text',
  'stream-tool-call': 'stream-tool-call',
  'stream-error-status': 'error-rate-limit',
  'stream-error-event': 'stream-error',
  'abort-mid-stream': 'stream-hang',
  'context-headers': 'text',
  health: 'models',
  'error-invalid-request': 'error-invalid-request',
  'error-auth': 'error-auth',
  'error-permission': 'error-permission',
  'error-not-found': 'error-not-found',
  'error-too-large': 'error-too-large',
  'error-rate-limit': 'error-rate-limit',
  'error-server': 'error-server',
  'error-overloaded': 'error-overloaded',
  // These two never reach the fake upstream (nothing listens / a server that never answers).
  'error-connect-refused': 'text',
  'error-timeout': 'text',
};

export interface ProviderConformanceDef {
  /** Suite name, e.g. 'anthropic'. */
  name: string;
  /** Which fake upstream to start. */
  protocol: FakeProtocol;
  /** Absolute path of this adapter's fixtures. */
  fixturesDir: string;
  /** Builds the adapter against the fake upstream (baseUrl as the adapter expects it). */
  create(baseUrl: string): Provider;
  /** Cases that do not apply, with the reason (printed as a skip). */
  skip?: Partial<Record<ConformanceCase, string>>;
  /** Protocol-specific checks on what the upstream received for a case (throw to fail). */
  checkRequest?(testCase: ConformanceCase, req: RecordedRequest): void;
}

const registry: ProviderConformanceDef[] = [];

export function defineProviderConformance(def: ProviderConformanceDef): void {
  if (registry.some((d) => d.name === def.name))
    throw new Error(`conformance: '${def.name}' registered twice`);
  registry.push(def);
}

export function registeredProviderConformance(): readonly ProviderConformanceDef[] {
  return registry;
}

// ---- canonical requests and answers ------------------------------------------------------------

export const WEATHER_TOOL: ToolDefinition = {
  type: 'function',
  function: {
    name: 'get_weather',
    description: 'Current weather for a city.',
    parameters: {
      type: 'object',
      properties: { location: { type: 'string' }, unit: { type: 'string', enum: ['celsius', 'fahrenheit'] } },
      required: ['location'],
    },
  },
};

export const CANONICAL = {
  model: 'conformance-model',
  text: {
    content: 'Hello! How can I help you today?',
    usage: { prompt_tokens: 12, completion_tokens: 10, total_tokens: 22 },
  },
  multiTurn: {
    content: 'Your name is Ada.',
    usage: { prompt_tokens: 30, completion_tokens: 6, total_tokens: 36 },
  },
  toolCall: {
    name: 'get_weather',
    arguments: { location: 'Paris', unit: 'celsius' },
    usage: { prompt_tokens: 50, completion_tokens: 20, total_tokens: 70 },
  },
  toolResult: {
    content: 'It is 18°C in Paris.',
    usage: { prompt_tokens: 80, completion_tokens: 9, total_tokens: 89 },
  },
  /** Streams: text that arrives before the error event / before the hang. */
  streamPrefix: 'Hello',
} as const;

/**
 * Each upstream error: what the client sees, and what dispatch makes of it (docs/routing.md) —
 * `retry`: another attempt may be made (isRetryable); `against`: it counts against the backend's
 * circuit breaker (countsAgainstBackend). Both are read from the error's `upstream` facts, which
 * every adapter must fill in (an Anthropic backend once filled in none: no retry, no circuit).
 */
export const ERROR_CASES: ReadonlyArray<{
  testCase: ConformanceCase;
  code: ErrorCode;
  status: number;
  retryAfter?: string;
  retry: boolean;
  against: boolean;
}> = [
  { testCase: 'error-invalid-request', code: 'invalid_request', status: 400, retry: false, against: false },
  // A bad upstream key is the operator's problem, not the client's: 502.
  { testCase: 'error-auth', code: 'upstream_error', status: 502, retry: false, against: false },
  { testCase: 'error-permission', code: 'upstream_error', status: 502, retry: false, against: false },
  { testCase: 'error-not-found', code: 'model_not_found', status: 404, retry: false, against: false },
  { testCase: 'error-too-large', code: 'payload_too_large', status: 413, retry: false, against: false },
  {
    testCase: 'error-rate-limit',
    code: 'rate_limit_exceeded',
    status: 429,
    retryAfter: '7',
    retry: true,
    against: false,
  },
  // A 500 is not retried (docs/routing.md lists 429/502/503/504/529) but says the backend is unwell.
  { testCase: 'error-server', code: 'upstream_error', status: 502, retry: false, against: true },
  { testCase: 'error-overloaded', code: 'upstream_unavailable', status: 503, retry: true, against: true },
];

export function canonicalRequest(testCase: ConformanceCase): ChatCompletionRequest {
  const model = CANONICAL.model;
  switch (testCase) {
    case 'multi-turn':
      return {
        model,
        messages: [
          { role: 'system', content: 'You are terse.' },
          { role: 'user', content: 'My name is Ada.' },
          { role: 'assistant', content: 'Nice to meet you, Ada.' },
          { role: 'user', content: 'What is my name?' },
        ],
        max_tokens: 64,
        temperature: 0.2,
      };
    case 'tool-call':
    case 'stream-tool-call':
      return {
        model,
        messages: [{ role: 'user', content: 'What is the weather in Paris?' }],
        tools: [WEATHER_TOOL],
        tool_choice: 'auto',
        max_tokens: 256,
        ...(testCase === 'stream-tool-call' ? { stream: true, stream_options: { include_usage: true } } : {}),
      };
    case 'tool-result-turn':
      return {
        model,
        messages: [
          { role: 'user', content: 'What is the weather in Paris?' },
          {
            role: 'assistant',
            content: null,
            tool_calls: [
              {
                id: 'call_1',
                type: 'function',
                function: { name: 'get_weather', arguments: '{"location":"Paris","unit":"celsius"}' },
              },
            ],
          },
          { role: 'tool', tool_call_id: 'call_1', content: '{"temperature":18,"unit":"celsius"}' },
        ],
        tools: [WEATHER_TOOL],
        max_tokens: 256,
      };
    case 'stream-text':
    case 'stream-error-status':
    case 'stream-error-event':
    case 'abort-mid-stream':
      return {
        model,
        messages: [{ role: 'user', content: 'Say hello.' }],
        max_tokens: 64,
        stream: true,
        stream_options: { include_usage: true },
      };
    default:
      return { model, messages: [{ role: 'user', content: 'Say hello.' }], max_tokens: 64 };
  }
}
