import type { Express } from 'express';
import type { MikroORM } from '@mikro-orm/postgresql';

export interface Readiness {
  /** False from the moment shutdown begins, so a load balancer stops sending requests. */
  accepting: boolean;
}

/** Adds /healthz (the process runs) and /readyz (it can serve: database reachable, not stopping). */
export function addHealthRoutes(app: Express, orm: MikroORM, readiness: Readiness): void {
  app.get('/healthz', (_request, response) => {
    response.json({ status: 'ok' });
  });
  app.get('/readyz', async (_request, response) => {
    if (!readiness.accepting) {
      response.status(503).json({ status: 'stopping' });
      return;
    }
    try {
      await orm.em.getConnection().execute('SELECT 1');
      response.json({ status: 'ready' });
    } catch {
      response.status(503).json({ status: 'database unavailable' });
    }
  });
}
