/**
 * @kvfold/jobs: the contract between the apps — schemas, ids, queue wiring, environment.
 */
export {
  BatchSpec,
  DEFAULT_CHECKPOINT_EVERY,
  DEFAULT_CHUNK_SIZE,
  DEFAULT_MAX_NEW_TOKENS,
  DEFAULT_MAX_TOKENS_PER_DOCUMENT,
  DEFAULT_STREAMING_SINK,
  FoldPolicy,
  FoldSettings,
  Grouping,
  KvCodec,
  KvStorage,
  ModelRef,
  Sampling,
  foldSettingsOf,
} from './batch-spec.ts';
export type { BatchSpecInput, FoldSettingsInput } from './batch-spec.ts';
export { CORPUS_INDEX_VERSION, CorpusDocument, CorpusIndex, ShardRef } from './corpus-index.ts';
export { BatchId, BatchJob, DocumentJob } from './document-job.ts';
export type { DocumentJobInput } from './document-job.ts';
export { Answer, DocumentResult, Timings } from './document-result.ts';
export { EnvSchema, envInteger, envOptional, loadEnv, loadEnvWith } from './env.ts';
export type { Env } from './env.ts';
export { JobsError, JobsErrorCode } from './errors.ts';
export {
  PRIORITY_BYTES_PER_STEP,
  PRIORITY_LIMIT,
  batchJobId,
  deriveBatchId,
  documentJobId,
  priorityForLength,
  sha256Hex,
  stableStringify,
} from './ids.ts';
export { DEFAULT_QUEUE_PREFIX, JOB_NAMES, QUEUE_NAMES, createQueues } from './queues.ts';
export type { KvfoldQueues } from './queues.ts';
export { DEFAULT_REDIS_CHECK_TIMEOUT_MS, checkRedis } from './redis-check.ts';
export { DEFAULT_REDIS_PORT, redactRedisUrl, redisOptionsFromUrl } from './redis-url.ts';
export { formatIssuePath, formatZodError, parseOrThrow } from './zod-format.ts';
export { ApiClient, ApiClientError, ApiClientErrorCode, ApiErrorBody, BatchList, BatchListQuery, CancelledBatch, CreatedBatch, DEFAULT_API_URL } from './api-client.ts';
export type { ApiClientOptions } from './api-client.ts';
export { BatchRecord, DocumentOutcomeStatus, IngestSummary } from './batch-record.ts';
export type { BatchCounters, BatchRecordInput, DocumentOutcome } from './batch-record.ts';
export { BatchRegistry, MAX_BATCH_PAGE } from './batch-registry.ts';
export type { BatchEntry, BatchPage, BatchRegistryOptions } from './batch-registry.ts';
export {
  BATCH_STATES,
  BATCH_TRANSITIONS,
  TERMINAL_STATES,
  canTransition,
  deriveBatchState,
  isTerminal,
  predecessorsOf,
} from './batch-state.ts';
export type { BatchObservation, BatchState, ParentJobState } from './batch-state.ts';
export { BatchStatus, DEFAULT_TOKENS_PER_BYTE, observeBatch, readBatchStatus, summarizeBatch } from './batch-status.ts';
export type { ActiveDocument, QueueObservation } from './batch-status.ts';
export { FOLD_STEP_BUCKETS, FoldMetrics } from './fold-metrics.ts';
export type { FoldMetricsSnapshot } from './fold-metrics.ts';
export { BatchCancelledError, FoldProgress, foldProgressOf } from './fold-progress.ts';
export { createRedis } from './redis-client.ts';
export type { Redis } from './redis-client.ts';
export {
  batchIngestReportKey,
  batchPrefix,
  batchResultsKey,
  batchSpecKey,
  docIdOfResultKey,
  documentResultKey,
  documentResultsPrefix,
} from './result-keys.ts';
export { ResultLine, ResultStub } from './result-line.ts';
export { storeOptionsFromEnv } from './store-config.ts';
export { exitWithStartError } from './startup.ts';
