/**
 * The store side of a batch: its record written beside its results, and the rebuild of its
 * registry entry from them. The object store is the source of truth (DESIGN.md section 9): Redis
 * may lose a batch's entry (a restart without persistence, an expired ended batch) and the entry
 * comes back from here, on demand or through `POST /v1/batches/recover`.
 *
 * What a rebuild reads: `batch-records/<id>.json` (the record: spec, corpora, counts), the corpus
 * indexes it names (the document list, for each document's bytes), `batches/<id>/cancelled.json`
 * and `batches/<id>/results.jsonl` (the state), then either `batches/<id>/summary.json` (an ended
 * batch's counts: one read) or `batches/<id>/results/` (each document's outcome: one read each).
 */
import { readOptional } from '@kvfold/storage';
import type { ObjectStore } from '@kvfold/storage';
import { z } from 'zod';
import { BATCH_RECORDS_PREFIX, BatchRecord, CorpusIndex, DocumentResult, batchCancelKey, batchIdOfRecordKey, batchRecordKey, batchResultsKey, batchSummaryKey, docIdOfResultKey, documentResultsPrefix, formatZodError, intAtLeast } from '@kvfold/contract';
import type { BatchCounters, BatchState, DocumentOutcomeStatus } from '@kvfold/contract';
import type { BatchEntry, BatchRegistry, EntrySnapshot } from './batch-registry.ts';
import { JobsError, JobsErrorCode } from './errors.ts';

/** The counts of a finalized batch, written beside its results.jsonl. */
export const BatchSummary = z.strictObject({
  documents: intAtLeast(0),
  completed: intAtLeast(0),
  /** Failed documents, with a result or a stub. */
  failed: intAtLeast(0),
  cancelled: intAtLeast(0),
  /** Tokens of the documents with a result. */
  tokens: intAtLeast(0),
});
export type BatchSummary = z.output<typeof BatchSummary>;

/** Writes a finalized batch's summary (after its results.jsonl). */
export async function writeBatchSummary(store: ObjectStore, batchId: string, summary: BatchSummary): Promise<void> {
  await store.put(batchSummaryKey(batchId), new TextEncoder().encode(`${JSON.stringify(BatchSummary.parse(summary))}\n`), { contentType: 'application/json' });
}

/** Writes the batch's record to the store (before anything is enqueued, so a batch is never only in Redis). */
export async function writeBatchRecord(store: ObjectStore, record: BatchRecord): Promise<void> {
  await store.put(batchRecordKey(record.id), new TextEncoder().encode(`${JSON.stringify(BatchRecord.parse(record))}\n`), { contentType: 'application/json' });
}

/** The batch's stored record, or null when the store has none. */
export async function readBatchRecord(store: ObjectStore, batchId: string): Promise<BatchRecord | null> {
  const value = await readJson(store, batchRecordKey(batchId));
  if (value === null) return null;
  const parsed = BatchRecord.safeParse(value);
  if (!parsed.success) {
    throw new JobsError(JobsErrorCode.InvalidInput, `${store.uri}/${batchRecordKey(batchId)} is not a batch record: ${formatZodError(parsed.error)}`);
  }
  return parsed.data;
}

/** Every batch id that has a record in the store. */
export async function* storedBatchIds(store: ObjectStore): AsyncGenerator<string> {
  for await (const info of store.list(BATCH_RECORDS_PREFIX)) {
    const id = batchIdOfRecordKey(info.key);
    if (id) yield id;
  }
}

/** A document's outcome as the store shows it. */
export interface StoredOutcome {
  readonly status: Extract<DocumentOutcomeStatus, 'completed' | 'failed'>;
  readonly tokens: number;
  readonly bytes: number;
}

/** What the store holds about one batch. */
export interface StoredBatch {
  readonly record: BatchRecord;
  /** docId -> bytes, every document of the batch. */
  readonly documents: ReadonlyMap<string, number>;
  /** docId -> outcome, the documents with a result object. */
  readonly outcomes: ReadonlyMap<string, StoredOutcome>;
  /** When cancel was asked, when the batch is cancelled. */
  readonly cancelledAt?: string;
  /** Whether results.jsonl is written (the batch was finalized). */
  readonly finalized: boolean;
  /** A finalized batch's counts, when its summary was read instead of its results (outcomes then empty). */
  readonly summary?: BatchSummary;
}

/**
 * Reads everything the store holds about `batchId`, or null when it has no record. A finalized
 * batch with a summary costs a handful of reads (`outcomes` is then left empty, unless
 * `outcomes: true` asks for them); otherwise one read per stored result.
 */
export async function readStoredBatch(store: ObjectStore, batchId: string, options: { outcomes?: boolean } = {}): Promise<StoredBatch | null> {
  const record = await readBatchRecord(store, batchId);
  if (!record) return null;
  const documents = new Map<string, number>();
  for (const key of record.corpus) {
    const parsed = CorpusIndex.safeParse(await readJson(store, key));
    if (!parsed.success) throw new JobsError(JobsErrorCode.InvalidInput, `batch ${batchId}: corpus index ${store.uri}/${key} is missing or invalid; the batch cannot be rebuilt without it`);
    for (const d of parsed.data.documents) documents.set(d.docId, d.bytes);
  }
  const cancel = (await readJson(store, batchCancelKey(batchId))) as { cancelledAt?: unknown } | null;
  const cancelledAt = cancel ? { cancelledAt: typeof cancel.cancelledAt === 'string' ? cancel.cancelledAt : record.createdAt } : {};
  const finalized = (await store.head(batchResultsKey(batchId))) !== null;
  const outcomes = new Map<string, StoredOutcome>();
  if (finalized && options.outcomes !== true) {
    const summary = BatchSummary.safeParse(await readJson(store, batchSummaryKey(batchId)).catch(() => null));
    if (summary.success) return { record, documents, outcomes, ...cancelledAt, finalized, summary: summary.data };
  }
  for await (const info of store.list(documentResultsPrefix(batchId))) {
    const docId = docIdOfResultKey(batchId, info.key);
    if (!docId || !documents.has(docId)) continue;
    const result = DocumentResult.safeParse(await readJson(store, info.key).catch(() => null));
    if (!result.success) continue; // finalizeBatch reports it as invalid; here it is not an outcome
    outcomes.set(docId, { status: result.data.status, tokens: result.data.tokens, bytes: documents.get(docId) ?? 0 });
  }
  return { record, documents, outcomes, ...cancelledAt, finalized };
}

/**
 * The state the store shows: finalized batches ended (cancelled or completed), a cancelled one is
 * `cancelling` until it is finalized, otherwise `in_progress` once a document ended, else `queued`.
 */
export function storedState(batch: StoredBatch): BatchState {
  if (batch.finalized) return batch.cancelledAt ? 'cancelled' : 'completed';
  if (batch.cancelledAt) return 'cancelling';
  return batch.outcomes.size > 0 ? 'in_progress' : 'queued';
}

/** The registry snapshot of a stored batch, in `state` (default: the state the store shows). */
export function snapshotOf(batch: StoredBatch, state: BatchState = storedState(batch)): EntrySnapshot {
  return {
    record: batch.record,
    state,
    ...(batch.cancelledAt && state !== 'queued' ? { cancelRequestedAt: batch.cancelledAt } : {}),
    outcomes: batch.outcomes,
    ...(batch.summary ? { counters: countersOf(batch.summary, batch.record.totalBytes) } : {}),
  };
}

/** Registry counters from a summary: every document of an ended batch is accounted for, so its bytes are the record's. */
function countersOf(summary: BatchSummary, totalBytes: number): BatchCounters {
  return { completed: summary.completed, failed: summary.failed, cancelled: summary.cancelled, removed: 0, tokens: summary.tokens, bytes: totalBytes };
}

/**
 * The registry entry of `batchId`; when Redis does not know it, it is rebuilt from the store (an
 * entry written meanwhile by someone else wins). Null when neither knows the batch.
 */
export async function loadBatchEntry(deps: { readonly registry: BatchRegistry; readonly store: ObjectStore }, batchId: string): Promise<BatchEntry | null> {
  const entry = await deps.registry.get(batchId);
  if (entry) return entry;
  const stored = await readStoredBatch(deps.store, batchId);
  if (!stored) return null;
  await deps.registry.restore(snapshotOf(stored), { onlyIfAbsent: true });
  return deps.registry.get(batchId);
}

/** Marks the batch cancelled in the store (the registry's flag is the fast copy workers read). */
export async function writeCancelMarker(store: ObjectStore, batchId: string, cancelledAt: string): Promise<void> {
  await store.put(batchCancelKey(batchId), new TextEncoder().encode(`${JSON.stringify({ cancelledAt })}\n`), { contentType: 'application/json' });
}

async function readJson(store: ObjectStore, key: string): Promise<unknown> {
  const bytes = await readOptional(store, key);
  if (bytes === null) return null;
  try {
    return JSON.parse(Buffer.from(bytes).toString('utf8'));
  } catch (err) {
    throw new JobsError(JobsErrorCode.InvalidInput, `${store.uri}/${key} is not JSON (${(err as Error).message})`);
  }
}
