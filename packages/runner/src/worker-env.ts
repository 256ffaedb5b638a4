/**
 * The queue worker's configuration, from the environment, validated at start. Shared variables
 * (REDIS_URL, KVFOLD_STORE, S3 settings, KVFOLD_QUEUE_PREFIX, LOG_LEVEL, KVFOLD_WORKER_CONCURRENCY,
 * KVFOLD_DEVICE, KVFOLD_MODEL_CACHE) come from @kvfold/jobs; the worker's own are below.
 * Outside tests, `process.env` reaches the package only here and in `runWorker`, as the default source.
 */
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { type Env, envInteger, envOptional, loadEnvWith } from '@kvfold/jobs';
import { z } from 'zod';

export const WorkerEnvSchema = z.object({
  /** Port of the health endpoint (GET /healthz, /readyz); 0 picks a free one; unset disables it. */
  KVFOLD_WORKER_HEALTH_PORT: envOptional(z.string().regex(/^[0-9]+$/, { error: 'must be a port number' }).transform(Number).optional()),
  /**
   * Time from SIGTERM to exit, ms. Kubernetes and spot hosts give 30 s; the active step finishes,
   * its checkpoint is committed and the job handed back well inside it, or the process exits anyway.
   */
  KVFOLD_STOP_GRACE_MS: envInteger(1000, 28_000),
  /** BullMQ job lock, ms; renewed at half of it while a fold runs. */
  KVFOLD_LOCK_DURATION_MS: envInteger(1000, 30_000),
  /**
   * How often this worker requeues jobs whose lock expired (their worker crashed or hung), ms.
   * A dead worker's job waits up to about lock duration + this before another worker resumes it.
   */
  KVFOLD_STALLED_INTERVAL_MS: envInteger(100, 30_000),
  /** ONNX Runtime intra-op threads; unset uses every core. */
  KVFOLD_THREADS: envOptional(z.string().regex(/^[1-9][0-9]*$/, { error: 'must be an integer >= 1' }).transform(Number).optional()),
  /** Caps a batch's maxBatchSize on this worker (the sequences one step of its session runs); unset: the batch's. */
  KVFOLD_MAX_BATCH_SIZE: envOptional(z.string().regex(/^[1-9][0-9]*$/, { error: 'must be an integer >= 1' }).transform(Number).optional()),
});

export type WorkerEnv = Env & z.output<typeof WorkerEnvSchema> & { readonly KVFOLD_STORE: string; readonly KVFOLD_MODEL_CACHE: string };

export function loadWorkerEnv(source: Readonly<Record<string, string | undefined>> = process.env, cwd = process.cwd()): WorkerEnv {
  const env = loadEnvWith(WorkerEnvSchema, source);
  return {
    ...env,
    KVFOLD_STORE: env.KVFOLD_STORE ?? pathToFileURL(resolve(cwd, '.kvfold/store')).href,
    KVFOLD_MODEL_CACHE: env.KVFOLD_MODEL_CACHE ?? resolve(cwd, '.kvfold/models-cache'),
  };
}
