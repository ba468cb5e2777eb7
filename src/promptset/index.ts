export { generatePromptset, TOKENIZER, GENERATOR_VERSION } from './generate.js';
export type { GenerateOptions, Manifest, Promptset, SourcePrompt, CategoryStats } from './generate.js';
export { compileExpectation } from './checks.js';
export type { Check } from './checks.js';
export { parsePromptsetJsonl, parseSourcePrompts, readPromptset, writePromptset } from './io.js';
export { BUILTIN_CATEGORIES } from './types.js';
export type { Expectation, PromptRecord, BuiltinCategory } from './types.js';
