export { runBench, MAX_COUNT, MAX_DURATION_MS } from './run.js';
export type { RunOptions, RunResult } from './run.js';
export { buildReport, renderMarkdown, redactUrl, REPORT_SCHEMA_VERSION } from './report.js';
export type { BenchReport, ReportMeta } from './report.js';
export { compareReports, renderComparison, parseReport, ALPHA } from './compare.js';
export type { Comparison } from './compare.js';
export { sendRecord, judgeAnswer, parseJudgeScore, extractText } from './client.js';
export { ERROR_CLASSES } from './types.js';
export type { ErrorClass, Outcome, Target } from './types.js';
