import pino, { type Logger } from 'pino';

/**
 * Paths that pino replaces with "[redacted]" wherever they appear, so that a
 * careless log call cannot write a credential.
 */
const REDACTED_PATHS = [
  'req.headers.authorization',
  'req.headers.cookie',
  'authorization',
  'password',
  'token',
  'apiKey',
  'secret',
  'prepaidId',
  '*.password',
  '*.token',
  '*.apiKey',
  '*.secret',
  '*.prepaidId',
];

export function createLogger(level: string): Logger {
  return pino({
    level,
    base: { service: 'prepaid-wallet' },
    redact: { paths: REDACTED_PATHS, censor: '[redacted]' },
    timestamp: pino.stdTimeFunctions.isoTime,
  });
}

export type { Logger };
