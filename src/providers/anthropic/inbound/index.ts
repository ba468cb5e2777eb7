export {
  anthropicRequestToOpenAI,
  parseAnthropicRequest,
  formatParam,
  type AnthropicInboundRequest,
} from './request.js';
export {
  openAIResponseToAnthropic,
  finishReasonToStopReason,
  usageToAnthropic,
  parseToolInput,
  messageId,
  type ToAnthropicOptions,
} from './response.js';
export {
  openAIChunksToAnthropicEvents,
  encodeAnthropicSse,
  type ToAnthropicStreamOptions,
} from './stream.js';
export { openAIErrorToAnthropic, anthropicErrorTypeForStatus } from './error.js';
