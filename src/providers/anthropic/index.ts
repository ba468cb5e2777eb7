export {
  AnthropicProvider,
  createAnthropicProvider,
  completionToChat,
  type AnthropicProviderOptions,
} from './provider.js';
export {
  toAnthropicRequest,
  convertMessages,
  convertImageUrl,
  clampTemperature,
  type ConvertRequestOptions,
} from './convert-request.js';
export {
  fromAnthropicResponse,
  mapStopReason,
  mapUsage,
  type ConvertResponseOptions,
} from './convert-response.js';
export { anthropicEventsToChunks, type ConvertStreamOptions } from './convert-stream.js';
export { mapAnthropicError, mapAnthropicStreamError, readAnthropicError } from './map-error.js';
export { readSseMessages, decodeAnthropicEvents } from './read-sse.js';
export * from './types.js';
export * from './inbound/index.js';
