/**
 * @kvfold/contract: what the apps agree on, as zod schemas and pure functions — batch specs and
 * fold settings, corpus indexes, document jobs and results, batch records and states, the REST
 * API's answers, ids and store keys. It imports nothing but zod and node:crypto, so the CLI, the
 * API's validation and tests load it without BullMQ, ioredis or an S3 client. Its plain defaults
 * (no zod) are `@kvfold/contract/defaults`.
 */
export {
  BatchSettings,
  BatchSpec,
  checkpointCodecOf,
  DEFAULT_CHECKPOINT_EVERY,
  DEFAULT_CHUNK_SIZE,
  DEFAULT_MAX_BATCH_SIZE,
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
export { ContractError, ContractErrorCode } from './errors.ts';
export { DEFAULT_API_URL } from './batch-defaults.ts';
export { NonEmpty, Sha256Hex, intAtLeast } from './fields.ts';
export {
  ApiErrorBody,
  BatchList,
  BatchListQuery,
  BatchStatus,
  CancelledBatch,
  CreatedBatch,
  MAX_BATCH_PAGE,
  RecoveredBatches,
  RetriedBatch,
} from './rest.ts';
export {
  PRIORITY_BYTES_PER_STEP,
  PRIORITY_LIMIT,
  batchGateJobId,
  batchJobId,
  deriveBatchId,
  documentJobId,
  priorityForLength,
  sha256Hex,
  stableStringify,
} from './ids.ts';
export { formatIssuePath, formatZodError, parseOrThrow } from './zod-format.ts';
export { BatchRecord, DocumentOutcomeStatus, IngestSummary } from './batch-record.ts';
export type { BatchCounters, BatchRecordInput, DocumentOutcome } from './batch-record.ts';
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
export {
  BATCH_RECORDS_PREFIX,
  batchCancelKey,
  batchIdOfRecordKey,
  batchIngestReportKey,
  batchPrefix,
  batchRecordKey,
  batchResultsKey,
  batchSpecKey,
  batchSummaryKey,
  docIdOfResultKey,
  documentResultKey,
  documentResultsPrefix,
} from './result-keys.ts';
export { ResultLine, ResultStub } from './result-line.ts';
