import { pino, type Logger, type LevelWithSilent } from 'pino';

export type { Logger };

export type LogFormat = 'auto' | 'json' | 'pretty';

const LEVELS: Record<number, string> = {
  10: 'TRACE',
  20: 'DEBUG',
  30: 'INFO ',
  40: 'WARN ',
  50: 'ERROR',
  60: 'FATAL',
};
const COLOURS: Record<number, string> = { 40: '\u001b[33m', 50: '\u001b[31m', 60: '\u001b[31m' };
const OMIT = new Set(['level', 'time', 'pid', 'hostname', 'service', 'msg']);

/** One pino JSON line as a line for people: "12:04:05 WARN  message key=value ...". */
export function prettyLine(json: string, colour = false): string {
  let o: Record<string, unknown>;
  try {
    o = JSON.parse(json) as Record<string, unknown>;
  } catch {
    return json;
  }
  const level = typeof o.level === 'number' ? o.level : 30;
  const time = typeof o.time === 'number' ? new Date(o.time).toISOString().slice(11, 19) : '';
  const fields = Object.entries(o)
    .filter(([k]) => !OMIT.has(k))
    .map(([k, v]) => `${k}=${typeof v === 'string' && !/\s/.test(v) ? v : JSON.stringify(v)}`)
    .join(' ');
  const tag = LEVELS[level] ?? String(level);
  const painted = colour && COLOURS[level] ? `${COLOURS[level]}${tag}\u001b[0m` : tag;
  return `${time} ${painted} ${typeof o.msg === 'string' ? o.msg : ''}${fields ? `  ${fields}` : ''}\n`;
}

/**
 * Logs (pino). JSON by default (for collectors); `pretty` (the default when stdout is a terminal)
 * writes one readable line per record. Secrets never reach the logger: keys are hashed, config
 * secrets are redacted.
 */
export function createLogger(level: LevelWithSilent = 'info', format: LogFormat = 'auto'): Logger {
  if (format === 'auto') format = process.stdout.isTTY ? 'pretty' : 'json';
  const opts = {
    level,
    base: { service: 'portico' },
    redact: {
      paths: ['req.headers.authorization', 'headers.authorization', '*.api_key', 'admin.token'],
      censor: '[redacted]',
    },
  };
  if (format === 'json') return pino(opts);
  const colour = process.stdout.isTTY === true;
  return pino(opts, { write: (line: string) => void process.stdout.write(prettyLine(line, colour)) });
}
