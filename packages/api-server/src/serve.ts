/**
 * The REST service in the calling process: read the environment, build, listen, stop cleanly on
 * SIGTERM/SIGINT (exit 0). `kvfold serve` and apps/api/src/main.ts both call this, so the process a
 * supervisor starts is the service itself and its signals reach it directly.
 */
import { checkRedis, createQueues, createRedis, exitWithStartError, redisOptionsFromUrl, storeOptionsFromEnv } from '@kvfold/jobs';
import { checkStore, openStore } from '@kvfold/storage';
import { pino } from 'pino';
import { buildApi } from './app.ts';
import { loadApiEnv } from './env.ts';

/** Starts the service from `source` (default process.env); resolves once it listens. A configuration or start error exits 1 naming it. */
export async function runApi(source: Readonly<Record<string, string | undefined>> = process.env, cwd = process.cwd()): Promise<void> {
  const cannotStart = (err: unknown): never => exitWithStartError('kvfold api', err);
  const env = (() => {
    try {
      return loadApiEnv(source, cwd);
    } catch (err) {
      return cannotStart(err);
    }
  })();
  const logger = pino({ level: env.LOG_LEVEL, name: 'kvfold-api' });
  const store = openStore(env.KVFOLD_STORE, storeOptionsFromEnv(env));
  await checkRedis(env.REDIS_URL).catch(cannotStart);
  await checkStore(store).catch(cannotStart);
  if (env.KVFOLD_API_KEYS.length === 0) logger.warn('KVFOLD_API_KEYS is empty: every keyed route answers 401');

  const redis = createRedis(env.REDIS_URL);
  const queues = createQueues(redisOptionsFromUrl(env.REDIS_URL), env.KVFOLD_QUEUE_PREFIX);
  const app = await buildApi({
    store,
    queues,
    redis,
    logger,
    apiKeys: env.KVFOLD_API_KEYS,
    limits: {
      bodyBytes: env.KVFOLD_API_BODY_LIMIT,
      uploadBytes: env.KVFOLD_API_UPLOAD_LIMIT,
      uploadFiles: env.KVFOLD_API_UPLOAD_MAX_FILES,
      rateLimitMax: env.KVFOLD_API_RATE_LIMIT,
      authFailuresMax: env.KVFOLD_API_AUTH_FAILURES,
      authFailureWindowMs: env.KVFOLD_API_AUTH_FAILURE_WINDOW_S * 1000,
    },
    ...(env.KVFOLD_API_SPOOL_DIR ? { spoolDir: env.KVFOLD_API_SPOOL_DIR } : {}),
    ...(env.KVFOLD_API_CHECK_MODEL ? { modelCheck: { storeOptions: storeOptionsFromEnv(env) } } : {}),
    registryTtlS: env.KVFOLD_REGISTRY_TTL_S,
    trustProxy: env.KVFOLD_API_TRUST_PROXY,
    enqueue: { keepCompletedS: env.KVFOLD_JOB_KEEP_COMPLETED_S, keepFailedS: env.KVFOLD_JOB_KEEP_FAILED_S },
  });

  const address = await app.listen({ port: env.KVFOLD_API_PORT, host: env.KVFOLD_API_HOST }).catch(cannotStart);
  logger.info({ address, store: store.uri }, 'kvfold api listening');

  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    process.once(signal, async () => {
      logger.info({ signal }, 'stopping');
      await app.close();
      await queues.close();
      await redis.quit();
      process.exit(0);
    });
  }
}
