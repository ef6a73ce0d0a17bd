import { defineConfig } from '@mikro-orm/postgresql';
import { Migrator } from '@mikro-orm/migrations';
import { ENTITIES } from './entities';
import { MIGRATIONS } from './migrations';

export interface OrmOptionsInput {
  databaseUrl: string;
  poolMax: number;
  /** Longest wait for a row or advisory lock, in milliseconds; 5000 when omitted. */
  lockTimeoutMs?: number;
  debug?: boolean;
}

// Bounded waits keep a stuck lock or a runaway query from holding a pool
// connection forever; the ledger retries lock timeouts a few times.
function sessionSettings(lockTimeoutMs: number): string {
  return `-c lock_timeout=${lockTimeoutMs} -c statement_timeout=30000 -c idle_in_transaction_session_timeout=60000`;
}

export function ormOptions(input: OrmOptionsInput) {
  return defineConfig({
    clientUrl: input.databaseUrl,
    entities: ENTITIES,
    extensions: [Migrator],
    // Entities are listed explicitly and decorated with explicit types, so
    // MikroORM needs neither folder discovery nor the TypeScript compiler.
    discovery: { requireEntitiesArray: true },
    // Discovery from explicit decorators is fast, and a file cache shared by
    // processes has broken MikroORM under jest (Map objects of another realm).
    metadataCache: { enabled: false },
    pool: { min: 0, max: input.poolMax },
    driverOptions: { connection: { options: sessionSettings(input.lockTimeoutMs ?? 5_000) } },
    migrations: {
      tableName: 'mikro_orm_migrations',
      // Relative to the working directory, which is the project root for npm scripts.
      path: 'dist/src/database/migrations',
      pathTs: 'src/database/migrations',
      migrationsList: MIGRATIONS,
      transactional: true,
      allOrNothing: true,
      emit: 'ts',
      // The server logs applied migrations through pino instead.
      silent: true,
      // Migrations are written by hand, not diffed from a schema snapshot,
      // and a snapshot file per database would litter the source tree.
      snapshot: false,
    },
    debug: input.debug ?? false,
    // The server logs through pino; MikroORM's own logger would bypass it.
    ignoreUndefinedInQuery: true,
    forceUtcTimezone: true,
  });
}
