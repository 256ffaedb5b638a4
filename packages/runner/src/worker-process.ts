/**
 * A queue worker in the calling process: read the environment, check Redis and the store, start
 * folding document jobs. On SIGTERM/SIGINT the active folds stop after their current step, commit a
 * checkpoint and hand their jobs back; the process exits 0 within KVFOLD_STOP_GRACE_MS (1 if the
 * grace period runs out). `kvfold worker` and apps/worker/src/main.ts both call this, so the process
 * a supervisor starts is the worker itself and its signals reach it directly.
 */
import type { AddressInfo } from 'node:net';
import { BatchRegistry, checkRedis, createRedis, exitWithStartError, FoldMetrics, redactRedisUrl, storeOptionsFromEnv } from '@kvfold/jobs';
import { checkStore, openStore } from '@kvfold/storage';
import { pino } from 'pino';
import { ModelCache } from './model-cache.ts';
import { startQueueWorker } from './queue-worker.ts';
import { loadWorkerEnv } from './worker-env.ts';
import { startHealthServer } from './worker-health.ts';

/** Starts the worker from `source` (default process.env); resolves once it is ready. A configuration or start error exits 1 naming it. */
export async function runWorker(source: Readonly<Record<string, string | undefined>> = process.env, cwd = process.cwd()): Promise<void> {
  const cannotStart = (err: unknown): never => exitWithStartError('kvfold worker', err);
  const env = (() => {
    try {
      return loadWorkerEnv(source, cwd);
    } catch (err) {
      return cannotStart(err);
    }
  })();
  const log = pino({ level: env.LOG_LEVEL, name: 'kvfold-worker' });
  const storeOptions = storeOptionsFromEnv(env);
  const store = openStore(env.KVFOLD_STORE, storeOptions);
  await checkRedis(env.REDIS_URL).catch(cannotStart);
  await checkStore(store).catch(cannotStart);

  const redis = createRedis(env.REDIS_URL);
  redis.on('error', (err) => log.warn({ err: err.message }, 'redis connection error; reconnecting'));
  // The documents this worker folds at once share its model's session runs, up to KVFOLD_MAX_BATCH_SIZE of them a run.
  const slots = Math.min(env.KVFOLD_WORKER_CONCURRENCY, env.KVFOLD_MAX_BATCH_SIZE ?? env.KVFOLD_WORKER_CONCURRENCY);
  const models = new ModelCache({ cacheDir: env.KVFOLD_MODEL_CACHE, device: env.KVFOLD_DEVICE, storeOptions, slots, ...(env.KVFOLD_THREADS ? { threads: env.KVFOLD_THREADS } : {}) });
  const worker = startQueueWorker({
    redisUrl: env.REDIS_URL,
    prefix: env.KVFOLD_QUEUE_PREFIX,
    store,
    models,
    registry: new BatchRegistry(redis, { prefix: env.KVFOLD_QUEUE_PREFIX, endedTtlS: env.KVFOLD_REGISTRY_TTL_S }),
    metrics: new FoldMetrics(redis, { prefix: env.KVFOLD_QUEUE_PREFIX }),
    log,
    concurrency: env.KVFOLD_WORKER_CONCURRENCY,
    ...(env.KVFOLD_MAX_BATCH_SIZE ? { maxBatchSize: env.KVFOLD_MAX_BATCH_SIZE } : {}),
    lockDurationMs: env.KVFOLD_LOCK_DURATION_MS,
    stalledIntervalMs: env.KVFOLD_STALLED_INTERVAL_MS,
  });
  await worker.ready();
  const health =
    env.KVFOLD_WORKER_HEALTH_PORT === undefined
      ? null
      : await startHealthServer(env.KVFOLD_WORKER_HEALTH_PORT, { healthy: worker.healthy, ready: async () => (await redis.ping()) === 'PONG' });
  log.info(
    { redis: redactRedisUrl(env.REDIS_URL), store: store.uri, concurrency: env.KVFOLD_WORKER_CONCURRENCY, device: env.KVFOLD_DEVICE, health: (health?.address() as AddressInfo | null)?.port },
    'kvfold worker ready',
  );

  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    process.once(signal, async () => {
      log.info({ signal, graceMs: env.KVFOLD_STOP_GRACE_MS }, 'stopping after the current step');
      setTimeout(() => {
        log.error('grace period over; exiting with folds still running (they resume from their last checkpoint)');
        process.exit(1);
      }, env.KVFOLD_STOP_GRACE_MS).unref();
      await worker.stop();
      await models.close();
      health?.close();
      await redis.quit();
      log.info('stopped');
      process.exit(0);
    });
  }
}
