/**
 * Operational routes: liveness, readiness and Prometheus metrics. None needs a key, none is rate
 * limited (probes and scrapers call them every few seconds).
 */
import type { Redis } from '@kvfold/jobs';
import { checkStore } from '@kvfold/storage';
import type { ObjectStore } from '@kvfold/storage';
import type { FastifyInstance } from 'fastify';
import { ApiError, ApiErrorCode } from '../errors.ts';
import type { ApiMetrics } from '../metrics.ts';
import { routeSchemas } from '../openapi.ts';

/** Longest a readiness check waits for Redis or the store; kubelet's default probe timeout is 1 s. */
const READY_TIMEOUT_MS = 900;

/** Options of the operational routes. */
export interface OperationRoutesOptions {
  readonly redis: Redis;
  readonly store: ObjectStore;
  readonly metrics: ApiMetrics;
}

function within<T>(what: string, promise: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not answer within ${READY_TIMEOUT_MS} ms`)), READY_TIMEOUT_MS);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** Registers /healthz, /readyz and /metrics on `app`. */
export async function operationRoutes(app: FastifyInstance, opts: OperationRoutesOptions): Promise<void> {
  const open = { rateLimit: false };

  app.get('/healthz', { schema: routeSchemas.healthz, config: open }, async () => ({ status: 'ok' }));

  app.get('/readyz', { schema: routeSchemas.readyz, config: open }, async () => {
    const failures: string[] = [];
    await within('Redis', opts.redis.ping()).catch((err: Error) => failures.push(`redis: ${err.message}`));
    await within('object store', checkStore(opts.store)).catch((err: Error) => failures.push(`store ${opts.store.uri}: ${err.message}`));
    if (failures.length > 0) throw new ApiError(503, ApiErrorCode.NotReady, `not ready: ${failures.join('; ')}`);
    return { status: 'ready', checks: { redis: 'ok', store: 'ok' } };
  });

  app.get('/metrics', { schema: routeSchemas.metrics, config: open }, async (_request, reply) => {
    const text = await opts.metrics.registry.metrics();
    return reply.type(opts.metrics.registry.contentType).send(text);
  });
}
