import { parseArgs } from 'node:util';
import { openAdminRuntime, type AdminRuntime } from './admin-runtime';
import { COMMANDS, UsageError, type Values } from './commands';

const USAGE = `Usage: npm run admin -- <command> [options]

Commands:
${Object.entries(COMMANDS)
  .map(
    ([name, command]) =>
      `  ${name.padEnd(22)} ${command.summary}\n${' '.repeat(25)}${command.usage}`,
  )
  .join('\n')}

The database is DATABASE_URL, or the embedded Postgres of \`npm start\` when it is unset.`;

/** Runs one operator command and exits with 0 on success, 1 on failure, 2 on a usage error. */
async function main(): Promise<void> {
  const [name, ...rest] = process.argv.slice(2);
  const command = name ? COMMANDS[name] : undefined;
  if (!command) {
    process.stderr.write(
      `${name && name !== 'help' ? `Unknown command "${name}".\n\n` : ''}${USAGE}\n`,
    );
    process.exit(name && name !== 'help' ? 2 : 0);
  }

  let values: Values;
  try {
    ({ values } = parseArgs({ args: rest, options: command.options, strict: true }) as {
      values: Values;
    });
  } catch (error) {
    process.stderr.write(
      `${(error as Error).message}\nUsage: npm run admin -- ${name} ${command.usage}\n`,
    );
    process.exit(2);
  }

  let runtime: AdminRuntime | undefined;
  try {
    runtime = await openAdminRuntime();
    await command.run(runtime, values, (line) => process.stdout.write(`${line}\n`));
    await runtime.close();
    process.exit(0);
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    process.stderr.write(`error: ${message}\n`);
    if (error instanceof UsageError)
      process.stderr.write(`Usage: npm run admin -- ${name} ${command.usage}\n`);
    await runtime?.close().catch(() => undefined);
    process.exit(error instanceof UsageError ? 2 : 1);
  }
}

void main();
