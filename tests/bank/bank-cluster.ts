import net from 'node:net';
import { ServerProcess } from '../support/server-process';
import { waitFor } from '../support/harness';

const SERVER = 'dist/src/main.js';

/** One server process of the cluster, which can be killed and started again. */
export interface Instance {
  index: number;
  port: number;
  process: ServerProcess;
  /** Base URL while the instance is up; undefined while it is down. */
  url: string | undefined;
  /** Instances that are never killed, such as the one the subscriber uses. */
  protected: boolean;
}

/**
 * Server processes on one database, started from the compiled server. The
 * bank test kills them with SIGKILL and starts them again while clients
 * keep sending requests.
 */
export class Cluster {
  readonly instances: Instance[] = [];
  kills = 0;
  /** Set by stop(), so that clients still running after a failure give up. */
  stopped = false;

  constructor(private readonly environment: Record<string, string>) {}

  async start(count: number): Promise<void> {
    for (let index = 0; index < count; index++) {
      const port = await freePort();
      const instance: Instance = {
        index,
        port,
        process: this.spawn(port, index === 0),
        url: undefined,
        protected: false,
      };
      this.instances.push(instance);
      instance.url = await this.ready(instance);
    }
  }

  /** URLs of the instances that are up now. */
  liveUrls(): string[] {
    return this.instances.flatMap((instance) => (instance.url ? [instance.url] : []));
  }

  /** Kills one unprotected instance with SIGKILL, then starts it again and waits until it is ready. */
  async killAndRestart(random: () => number, downtimeMs: number): Promise<void> {
    const candidates = this.instances.filter((instance) => !instance.protected && instance.url);
    if (candidates.length === 0) return;
    const victim = candidates[Math.floor(random() * candidates.length)]!;
    victim.url = undefined;
    victim.process.signal('SIGKILL');
    await victim.process.wait(10_000);
    this.kills++;
    await new Promise((resolve) => setTimeout(resolve, downtimeMs));
    victim.process = this.spawn(victim.port, false);
    victim.url = await this.ready(victim);
  }

  /** Waits until the instance answers /readyz and returns its base URL. */
  private async ready(instance: Instance): Promise<string> {
    const url = `http://127.0.0.1:${instance.port}`;
    await waitFor(
      async () => {
        if (instance.process.exitCode !== undefined) {
          throw new Error(
            `server exited with ${instance.process.exitCode}: ${instance.process.lines.slice(-5).join('\n')}`,
          );
        }
        return (await fetch(`${url}/readyz`).catch(() => undefined))?.ok === true;
      },
      30_000,
      `instance ${instance.index} to be ready`,
    );
    return url;
  }

  /** Stops every instance with SIGTERM and returns their exit codes. */
  async stop(): Promise<Array<number | null>> {
    this.stopped = true;
    return Promise.all(
      this.instances.map(async (instance) => {
        instance.url = undefined;
        if (instance.process.exitCode !== undefined) return instance.process.exitCode;
        instance.process.signal('SIGTERM');
        return instance.process.wait(30_000);
      }),
    );
  }

  private spawn(port: number, migrate: boolean): ServerProcess {
    return ServerProcess.start(SERVER, {
      ...this.environment,
      PORT: String(port),
      MIGRATE_ON_START: migrate ? 'true' : 'false',
      // Warnings and errors only: a log line per request would fill the test's memory.
      LOG_LEVEL: 'warn',
    });
  }
}

/** A TCP port that was free a moment ago, for a server that keeps it across restarts. */
async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const { port } = server.address() as net.AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}
