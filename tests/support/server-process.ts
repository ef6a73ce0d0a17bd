import { spawn, type ChildProcess } from 'node:child_process';
import { waitFor } from './harness';

/** The compiled server or CLI running as a child process, with its output kept line by line. */
export class ServerProcess {
  readonly lines: string[] = [];
  exitCode: number | null | undefined = undefined;
  private readonly exited: Promise<number | null>;

  private constructor(readonly child: ChildProcess) {
    let buffer = '';
    const onData = (chunk: Buffer) => {
      buffer += chunk.toString();
      const parts = buffer.split('\n');
      buffer = parts.pop()!;
      this.lines.push(...parts.filter((line) => line.length > 0));
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    this.exited = new Promise((resolve) =>
      child.on('exit', (code) => {
        if (buffer) this.lines.push(buffer);
        this.exitCode = code;
        resolve(code);
      }),
    );
  }

  /** Starts `node <script>` with the given environment added to a minimal one. */
  static start(
    script: string,
    environment: Record<string, string | undefined>,
    args: string[] = [],
  ): ServerProcess {
    const env: Record<string, string> = {
      PATH: process.env.PATH ?? '',
      HOME: process.env.HOME ?? '',
    };
    for (const [name, value] of Object.entries(environment))
      if (value !== undefined) env[name] = value;
    return new ServerProcess(
      spawn(process.execPath, [script, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] }),
    );
  }

  /** Log lines parsed as JSON; other lines are skipped. */
  get logs(): Array<Record<string, unknown>> {
    return this.lines.flatMap((line) => {
      try {
        return [JSON.parse(line) as Record<string, unknown>];
      } catch {
        return [];
      }
    });
  }

  async waitForLog(message: string, timeoutMs = 20_000): Promise<Record<string, unknown>> {
    await waitFor(
      () => this.logs.some((log) => log.msg === message) || this.exitCode !== undefined,
      timeoutMs,
      message,
    );
    const found = this.logs.find((log) => log.msg === message);
    if (!found)
      throw new Error(
        `process exited with ${this.exitCode} before logging "${message}":\n${this.lines.join('\n')}`,
      );
    return found;
  }

  /** Waits for the "server listening" log and returns the base URL. */
  async waitForListening(): Promise<string> {
    const log = await this.waitForLog('server listening');
    return `http://127.0.0.1:${log.port}`;
  }

  async wait(timeoutMs = 20_000): Promise<number | null> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`process did not exit within ${timeoutMs} ms`)),
        timeoutMs,
      );
    });
    try {
      return await Promise.race([this.exited, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Sends a signal to this child, by its process id. */
  signal(name: NodeJS.Signals): void {
    this.child.kill(name);
  }
}
