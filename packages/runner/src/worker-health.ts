/** A minimal health endpoint for orchestrators: it answers while a fold step runs, since inference is off-thread. */
import { createServer, type Server } from 'node:http';

export function startHealthServer(port: number, checks: { healthy: () => boolean; ready: () => Promise<boolean> }): Promise<Server> {
  const server = createServer(async (req, res) => {
    const ok = req.url === '/healthz' ? checks.healthy() : req.url === '/readyz' ? await checks.ready().catch(() => false) : null;
    res.statusCode = ok === null ? 404 : ok ? 200 : 503;
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify(ok === null ? { error: 'not found' } : { ok }));
  });
  return new Promise((resolve) => server.listen(port, '0.0.0.0', () => resolve(server)));
}
