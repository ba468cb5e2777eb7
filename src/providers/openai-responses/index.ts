/** The inbound OpenAI Responses API: conversions between its shapes and canonical chat. */
export * from './types.js';
export * from './convert-request.js';
export * from './convert-response.js';
export * from './convert-stream.js';
