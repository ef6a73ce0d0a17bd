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

/** Creates the process's logger; tests pass a destination to read what was logged. */
export function createLogger(level: string, destination?: pino.DestinationStream): Logger {
  const options = {
    level,
    base: { service: 'prepaid-wallet' },
    redact: { paths: REDACTED_PATHS, censor: '[redacted]' },
    timestamp: pino.stdTimeFunctions.isoTime,
  };
  return destination ? pino(options, destination) : pino(options);
}

export type { Logger };
