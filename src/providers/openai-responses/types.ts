/**
 * The OpenAI Responses API shapes Portico reads and writes (the subset it supports), kept to what
 * the official SDK's types (openai/resources/responses) say. Inside, requests run as canonical
 * chat completions; these are only the edge's shapes.
 */

export interface OutputText {
  type: 'output_text';
  text: string;
  annotations: unknown[];
  logprobs: unknown[];
}

export interface MessageItem {
  type: 'message';
  id: string;
  status: 'in_progress' | 'completed' | 'incomplete';
  role: 'assistant';
  content: OutputText[];
}

export interface FunctionCallItem {
  type: 'function_call';
  id: string;
  call_id: string;
  name: string;
  arguments: string;
  status: 'in_progress' | 'completed' | 'incomplete';
}

export type OutputItem = MessageItem | FunctionCallItem;

export interface ResponseUsage {
  input_tokens: number;
  input_tokens_details: { cached_tokens: number };
  output_tokens: number;
  output_tokens_details: { reasoning_tokens: number };
  total_tokens: number;
}

export interface FunctionTool {
  type: 'function';
  name: string;
  description?: string | null;
  parameters: Record<string, unknown> | null;
  strict: boolean | null;
}

export type TextFormat =
  | { type: 'text' }
  | { type: 'json_object' }
  | {
      type: 'json_schema';
      name: string;
      schema: Record<string, unknown>;
      description?: string;
      strict?: boolean | null;
    };

export type ResponseToolChoice = 'none' | 'auto' | 'required' | { type: 'function'; name: string };

export interface ResponseObject {
  id: string;
  object: 'response';
  created_at: number;
  status: 'completed' | 'failed' | 'in_progress' | 'incomplete';
  background: boolean;
  error: { code: string; message: string } | null;
  incomplete_details: { reason: 'max_output_tokens' | 'content_filter' } | null;
  instructions: string | null;
  max_output_tokens: number | null;
  metadata: Record<string, string>;
  model: string;
  output: OutputItem[];
  parallel_tool_calls: boolean;
  previous_response_id: string | null;
  reasoning: { effort: null; summary: null };
  service_tier: string;
  store: boolean;
  temperature: number | null;
  text: { format: TextFormat };
  tool_choice: ResponseToolChoice;
  tools: FunctionTool[];
  top_p: number | null;
  truncation: 'disabled';
  usage: ResponseUsage | null;
  user: string | null;
}

/** Input items as stored (normalised): what the next turn of a previous_response_id chain replays. */
export type InputItem =
  | {
      type: 'message';
      role: 'user' | 'system' | 'developer' | 'assistant';
      content: Array<{ type: string; [k: string]: unknown }>;
      id?: string;
    }
  | { type: 'function_call'; call_id: string; name: string; arguments: string; id?: string }
  | { type: 'function_call_output'; call_id: string; output: string; id?: string };

/** One typed stream event (`type` and `sequence_number` on every one). */
export interface ResponseStreamEvent {
  type: string;
  sequence_number: number;
  [k: string]: unknown;
}
