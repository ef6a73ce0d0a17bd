import type { ParseArgsConfig } from 'node:util';
import type { AdminRuntime } from './admin-runtime';

export type Values = Record<string, string | boolean | undefined>;

/** Raised when a command's options are missing or invalid. The message names the option. */
export class UsageError extends Error {}

export interface AdminCommand {
  summary: string;
  usage: string;
  options: NonNullable<ParseArgsConfig['options']>;
  run(runtime: AdminRuntime, values: Values, print: (line: string) => void): Promise<void>;
}
