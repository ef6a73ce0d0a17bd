import { spawn, type ChildProcess } from 'node:child_process';
import { readFile } from 'node:fs/promises';

/** The compiled server as a child process, as production runs it. */
export class BenchServer {
  private constructor(
    readonly child: ChildProcess,
    readonly url: string,
  ) {}

  /** Starts the server and resolves once /readyz answers 200; `startedAt` is when the process was spawned. */
  static async start(
    environment: Record<string, string>,
    port: number,
  ): Promise<{ server: BenchServer; readyAfterMs: number }> {
    const startedAt = performance.now();
    const child = spawn(process.execPath, ['dist/src/main.js'], {
      env: { PATH: process.env.PATH ?? '', LOG_LEVEL: 'warn', ...environment, PORT: String(port) },
      stdio: ['ignore', 'ignore', 'inherit'],
    });
    const url = `http://127.0.0.1:${port}`;
    for (;;) {
      if (child.exitCode !== null) throw new Error(`server exited with ${child.exitCode}`);
      const ready = await fetch(`${url}/readyz`).then(
        (response) => response.ok,
        () => false,
      );
      if (ready) break;
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    return { server: new BenchServer(child, url), readyAfterMs: performance.now() - startedAt };
  }

  /** Resident memory of the server process, in MiB, from /proc. */
  async rssMiB(): Promise<number> {
    const status = await readFile(`/proc/${this.child.pid}/status`, 'utf8');
    const kilobytes = Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1] ?? 0);
    return kilobytes / 1024;
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null) return;
    const exited = new Promise((resolve) => this.child.once('exit', resolve));
    this.child.kill('SIGTERM');
    await exited;
  }
}

/** The value below which `fraction` of the samples lie. */
export function percentile(samples: number[], fraction: number): number {
  if (samples.length === 0) return NaN;
  const sorted = [...samples].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(fraction * sorted.length))]!;
}

export function median(samples: number[]): number {
  return percentile(samples, 0.5);
}
