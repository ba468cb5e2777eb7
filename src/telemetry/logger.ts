import { pino, type Logger, type LevelWithSilent } from 'pino';

export type { Logger };

/** JSON logs (pino). Secrets never reach the logger: keys are hashed, config secrets are redacted. */
export function createLogger(level: LevelWithSilent = 'info'): Logger {
  return pino({
    level,
    base: { service: 'portico' },
    redact: {
      paths: ['req.headers.authorization', 'headers.authorization', '*.api_key', 'admin.token'],
      censor: '[redacted]',
    },
  });
}
