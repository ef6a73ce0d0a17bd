import type { AdminCommand } from './admin-command';

export const OPERATOR_COMMANDS: Record<string, AdminCommand> = {};
