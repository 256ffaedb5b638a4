/**
 * @kvfold/jobs: the queue and the registry (BullMQ on Redis, the store-backed batch records,
 * status, metrics, environment) and the API client, over the contract between the apps, which
 * it re-exports. Code that needs only the contract (the CLI's command tree, anything that must load
 * without Redis or S3 clients) imports `@kvfold/jobs/contract`.
 */
export * from './contract.ts';
export { EnvSchema, envInteger, envOptional, loadEnv, loadEnvWith } from './env.ts';
export type { Env } from './env.ts';
export { DEFAULT_QUEUE_PREFIX, JOB_NAMES, QUEUE_NAMES, createQueues } from './queues.ts';
export type { KvfoldQueues } from './queues.ts';
export { DEFAULT_REDIS_CHECK_TIMEOUT_MS, checkRedis } from './redis-check.ts';
export { DEFAULT_REDIS_PORT, redactRedisUrl, redisOptionsFromUrl } from './redis-url.ts';
export { ApiClient, ApiClientError, ApiClientErrorCode, ApiErrorBody, BatchList, BatchListQuery, CancelledBatch, CreatedBatch, DEFAULT_API_URL, RecoveredBatches, RetriedBatch } from './api-client.ts';
export type { ApiClientOptions } from './api-client.ts';
export { BatchRegistry, DEFAULT_ENDED_TTL_S, MAX_BATCH_PAGE } from './batch-registry.ts';
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
export { BatchStatus, DEFAULT_TOKENS_PER_BYTE, observeBatch, readBatchStatus, summarizeBatch } from './batch-status.ts';
export type { ActiveDocument, QueueObservation } from './batch-status.ts';
export { FOLD_STEP_BUCKETS, FoldMetrics } from './fold-metrics.ts';
export type { FoldMetricsSnapshot } from './fold-metrics.ts';
export { BatchCancelledError, FoldProgress, foldProgressOf } from './fold-progress.ts';
export { createRedis } from './redis-client.ts';
export type { Redis } from './redis-client.ts';
export { storeOptionsFromEnv } from './store-config.ts';
export { exitWithStartError } from './startup.ts';
