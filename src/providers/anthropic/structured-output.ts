/**
 * Structured outputs on Anthropic backends. Claude has no `response_format`; the reliable way to get
 * JSON that follows a schema is a forced tool call whose input schema is the requested one. The
 * request gets that tool (and a tool_choice that makes the model use a tool), and the tool's input
 * comes back to the client as the message content, as OpenAI's API returns it.
 */
import { PorticoError } from '../../errors/portico-error.js';
import type { ChatCompletionRequest } from '../openai-types.js';
import type { AnthropicTool, AnthropicToolChoice } from './types.js';

export interface ResponseTool {
  /** The tool's name in the Anthropic request (never one of the client's tool names). */
  name: string;
  tool: AnthropicTool;
  /** The schema's root is not an object: it is wrapped as the `value` property and unwrapped again. */
  wrapped: boolean;
}

const TOOL_NAME = /[^a-zA-Z0-9_-]/g;

/** The response tool for a request's `response_format`, or undefined when none is needed. */
export function responseToolFor(req: ChatCompletionRequest): ResponseTool | undefined {
  const rf = req['response_format'] as
    { type?: unknown; json_schema?: { name?: unknown; description?: unknown; schema?: unknown } } | undefined;
  if (rf === undefined || rf === null || rf.type === 'text') return undefined;
  if (rf.type !== 'json_object' && rf.type !== 'json_schema')
    throw new PorticoError(
      'invalid_request',
      `response_format type ${JSON.stringify(rf.type)} is not supported by this model's backend (Anthropic); use json_schema or json_object.`,
      { param: 'response_format' },
    );
  const taken = new Set((req.tools ?? []).map((t) => t.function.name));
  const js = rf.type === 'json_schema' ? rf.json_schema : undefined;
  let name = typeof js?.name === 'string' ? js.name.replace(TOOL_NAME, '_').slice(0, 56) : '';
  if (name === '') name = 'json_response';
  while (taken.has(name)) name = `${name}_out`;
  const schema =
    js && typeof js.schema === 'object' && js.schema !== null
      ? (js.schema as Record<string, unknown>)
      : { type: 'object' };
  const wrapped = schema['type'] !== 'object';
  const description =
    typeof js?.description === 'string' && js.description !== ''
      ? js.description
      : 'Give your final answer by calling this tool with the answer as its input.';
  return {
    name,
    wrapped,
    tool: {
      name,
      description,
      input_schema: wrapped ? { type: 'object', properties: { value: schema }, required: ['value'] } : schema,
    },
  };
}

/** The tool_choice that makes the model answer through a tool (the response tool or a client tool). */
export function responseToolChoice(
  rt: ResponseTool,
  clientChoice: AnthropicToolChoice | undefined,
  hasClientTools: boolean,
): AnthropicToolChoice {
  const noParallel =
    clientChoice !== undefined && 'disable_parallel_tool_use' in clientChoice
      ? { disable_parallel_tool_use: clientChoice.disable_parallel_tool_use === true }
      : {};
  if (clientChoice?.type === 'tool') return clientChoice;
  if (!hasClientTools || clientChoice?.type === 'none') return { type: 'tool', name: rt.name, ...noParallel };
  return { type: 'any', ...noParallel };
}

/** The client-visible content for the response tool's input. */
export function responseToolContent(rt: ResponseTool, input: unknown): string {
  const v =
    rt.wrapped && typeof input === 'object' && input !== null ? (input as { value?: unknown }).value : input;
  return JSON.stringify(v ?? {});
}
