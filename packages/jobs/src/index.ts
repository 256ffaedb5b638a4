/**
 * @kvfold/jobs: the queue and the registry — BullMQ on Redis, the store-backed batch records,
 * batch status, metrics, fold progress, environment — over the contract between the apps
 * (@kvfold/contract). The REST client is @kvfold/api-client.
 */
export { EnvSchema, envInteger, envOptional, loadEnv, loadEnvWith } from './env.ts';
export type { Env } from './env.ts';
export { JobsError, JobsErrorCode } from './errors.ts';
export { DEFAULT_QUEUE_PREFIX, JOB_NAMES, QUEUE_NAMES, createQueues } from './queues.ts';
export type { KvfoldQueues } from './queues.ts';
export { DEFAULT_REDIS_CHECK_TIMEOUT_MS, checkRedis } from './redis-check.ts';
export { DEFAULT_REDIS_PORT, redactRedisUrl, redisOptionsFromUrl } from './redis-url.ts';
export { BatchRegistry, DEFAULT_ENDED_TTL_S } from './batch-registry.ts';
export type { BatchEntry, BatchPage, BatchRegistryOptions, EntrySnapshot } from './batch-registry.ts';
export {
  BatchSummary,
  loadBatchEntry,
  readBatchRecord,
  readStoredBatch,
  snapshotOf,
  storedBatchIds,
  storedState,
  writeBatchRecord,
  writeBatchSummary,
  writeCancelMarker,
} from './batch-store.ts';
export type { StoredBatch, StoredOutcome } from './batch-store.ts';
export { DEFAULT_TOKENS_PER_BYTE, observeBatch, readBatchStatus, summarizeBatch } from './batch-status.ts';
export type { ActiveDocument, QueueObservation } from './batch-status.ts';
export { FOLD_STEP_BUCKETS, FoldMetrics } from './fold-metrics.ts';
export type { FoldMetricsSnapshot } from './fold-metrics.ts';
export { BatchCancelledError, FoldProgress, foldProgressOf } from './fold-progress.ts';
export { createRedis } from './redis-client.ts';
export type { Redis } from './redis-client.ts';
export { storeOptionsFromEnv } from './store-config.ts';
export { exitWithStartError } from './startup.ts';
