/** Shapes shared by the harness runner, reports and compare. */

export const ERROR_CLASSES = [
  'http_4xx',
  'http_5xx',
  'timeout',
  'connect',
  'invalid_response',
  'check_failed',
] as const;
export type ErrorClass = (typeof ERROR_CLASSES)[number];

/** One request's result. `error_class` is null exactly when the request passed. */
export interface Outcome {
  seq: number;
  id: string;
  category: string;
  status: number | null;
  passed: boolean;
  error_class: ErrorClass | null;
  reason: string | null;
  latency_ms: number;
  ttft_ms: number | null;
  prompt_tokens: number;
  completion_tokens: number;
  judge_score: number | null;
}

export type Target = { kind: 'chat'; model: string } | { kind: 'team'; team: string };
