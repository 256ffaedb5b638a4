/**
 * BatchStatus: a batch's state, per-document counts, token progress and ETA, derived from the
 * registry record plus the BullMQ jobs of the batch. The REST API serves it; the CLI prints it.
 *
 * Sources, chosen so one status read costs O(active documents), not O(documents):
 * - completed / failed / cancelled by a worker: the registry counters alone. Every end of a
 *   document is counted there once (`recordDocumentDone`): the worker counts the result it stored,
 *   a cancelled document, and a document that failed its last attempt without a result; counters
 *   Redis lost are rebuilt from the stored results (loadBatchEntry);
 * - active: the documents queue's active jobs whose id starts with the batch id, with the
 *   FoldProgress each worker reported through `job.updateProgress`;
 * - cancelled: once cancel was asked, every document that is neither finished nor active (cancel
 *   removes the waiting ones in one script, and a worker skips any it still gets);
 * - state: the registry's state moved on by the parent job's state (deriveBatchState);
 * - tokens of finished documents: the registry counters. Documents whose token count nobody knows
 *   yet are estimated from their bytes, at the tokens-per-byte ratio seen so far (or
 *   DEFAULT_TOKENS_PER_BYTE before any is known).
 */
import type { Job } from 'bullmq';
import type { BatchRegistry, BatchEntry } from './batch-registry.ts';
import { type BatchStatus, batchJobId, deriveBatchState, isTerminal } from '@kvfold/contract';
import type { ParentJobState } from '@kvfold/contract';
import type { ObjectStore } from '@kvfold/storage';
import { loadBatchEntry } from './batch-store.ts';
import { foldProgressOf } from './fold-progress.ts';
import type { KvfoldQueues } from './queues.ts';

/** Tokens per UTF-8 byte assumed before any document reports its count (BPE on English: ~4 bytes/token). */
export const DEFAULT_TOKENS_PER_BYTE = 0.25;


/** One document being folded now. */
export interface ActiveDocument {
  readonly bytes: number;
  /** From its FoldProgress, when reported. */
  readonly tokens?: number;
  readonly totalTokens?: number;
  readonly etaMs?: number | null;
  /** When the current attempt started (ms since epoch). */
  readonly startedAt?: number;
}

/** What the queue shows about one batch. */
export interface QueueObservation {
  readonly parent: ParentJobState;
  readonly active: readonly ActiveDocument[];
}

/**
 * The status of a batch from its registry entry and a queue observation. Pure: the same inputs
 * always give the same status.
 */
export function summarizeBatch(entry: BatchEntry, seen: QueueObservation, nowMs: number): BatchStatus {
  const { record, counters } = entry;
  const total = record.documents;
  const completed = Math.min(total, counters.completed);
  const failed = Math.min(total - completed, counters.failed);
  const active = seen.active.length;
  const open = Math.max(0, total - completed - failed - active);
  const cancelled = entry.cancelRequestedAt ? open : Math.min(open, counters.cancelled + counters.removed);
  const waiting = open - cancelled;
  const finished = completed + failed + cancelled;
  const state = deriveBatchState(entry.state, { parent: seen.parent, active, finished });

  // Tokens: reported documents exactly, active ones from their progress, the rest estimated.
  let knownTokens = counters.tokens;
  let knownBytes = counters.bytes;
  let activeTokens = 0;
  let activeTotal = 0;
  let activeUnknownBytes = 0;
  for (const doc of seen.active) {
    if (doc.totalTokens !== undefined && doc.totalTokens > 0) {
      activeTokens += Math.min(doc.tokens ?? 0, doc.totalTokens);
      activeTotal += doc.totalTokens;
      knownTokens += doc.totalTokens;
      knownBytes += doc.bytes;
    } else {
      activeUnknownBytes += doc.bytes;
    }
  }
  const perByte = knownBytes > 0 && knownTokens > 0 ? knownTokens / knownBytes : DEFAULT_TOKENS_PER_BYTE;
  const reported = counters.completed + counters.failed + counters.cancelled + counters.removed;
  const unreportedFinished = Math.max(0, finished - reported);
  const activeBytes = seen.active.reduce((sum, d) => sum + d.bytes, 0);
  const unknownBytes = Math.max(0, record.totalBytes - counters.bytes - activeBytes);
  const unknownDocs = unreportedFinished + waiting;
  const unknownFinishedBytes = unknownDocs > 0 ? (unknownBytes * unreportedFinished) / unknownDocs : 0;

  const tokens = Math.round(counters.tokens + activeTokens + unknownFinishedBytes * perByte);
  const totalTokens = Math.max(tokens, Math.round(counters.tokens + activeTotal + (activeUnknownBytes + unknownBytes) * perByte));
  const allDone = finished >= total;
  const fraction = totalTokens > 0 ? Math.min(1, tokens / totalTokens) : allDone ? 1 : 0;

  return {
    id: record.id,
    state,
    createdAt: record.createdAt,
    updatedAt: entry.updatedAt,
    counts: { total, waiting, active, completed, failed, cancelled },
    progress: { tokens, totalTokens, fraction: allDone && isTerminal(state) ? 1 : fraction },
    etaMs: isTerminal(state) ? 0 : estimateEta(seen.active, totalTokens - tokens, nowMs),
  };
}

/**
 * Time left at the fleet's current speed: the summed rate of the active folds (each from its own
 * ETA when it reports one, else tokens over elapsed time) divides the tokens left. Null when no
 * active fold has a rate yet.
 */
function estimateEta(active: readonly ActiveDocument[], remainingTokens: number, nowMs: number): number | null {
  let rate = 0; // tokens per ms, all active folds together
  for (const doc of active) {
    const left = (doc.totalTokens ?? 0) - (doc.tokens ?? 0);
    if (doc.etaMs && doc.etaMs > 0 && left > 0) rate += left / doc.etaMs;
    else if (doc.tokens && doc.startedAt && nowMs > doc.startedAt) rate += doc.tokens / (nowMs - doc.startedAt);
  }
  if (rate <= 0) return null;
  return Math.round(Math.max(0, remainingTokens) / rate);
}

/**
 * The queue's view of one batch: its parent job's state and its active documents.
 * `activeJobs` is the documents queue's active list when the caller already has it (one read
 * serves a page of batches).
 */
export async function observeBatch(
  queues: Pick<KvfoldQueues, 'batches' | 'documents'>,
  batchId: string,
  activeJobs?: readonly Job[],
): Promise<QueueObservation> {
  const parent = await queues.batches.getJob(batchJobId(batchId));
  const active = (activeJobs ?? (await queues.documents.getActive())).filter((job: Job) => job.id?.startsWith(`${batchId}-`));
  return { parent: parent ? ((await parent.getState()) as ParentJobState) : 'missing', active: active.map(activeDocument) };
}

function activeDocument(job: Job): ActiveDocument {
  const progress = foldProgressOf(job.progress);
  const bytes = typeof job.data?.bytes === 'number' ? job.data.bytes : 0;
  return {
    bytes,
    ...(progress ? { tokens: progress.tokens, totalTokens: progress.totalTokens, etaMs: progress.etaMs } : {}),
    ...(job.processedOn ? { startedAt: job.processedOn } : {}),
  };
}

/**
 * Reads a batch's status, or null when neither the registry nor the store knows it (an entry Redis
 * lost is rebuilt from the store first: loadBatchEntry). A state the queue has moved
 * on to (in_progress, finalizing, completed, cancelled, ...) is written back to the registry.
 */
export async function readBatchStatus(
  deps: { readonly registry: BatchRegistry; readonly store: ObjectStore; readonly queues: Pick<KvfoldQueues, 'batches' | 'documents'> },
  batchId: string,
  options: { nowMs?: number; activeJobs?: readonly Job[] } = {},
): Promise<BatchStatus | null> {
  const entry = await loadBatchEntry(deps, batchId);
  if (!entry) return null;
  const status = summarizeBatch(entry, await observeBatch(deps.queues, batchId, options.activeJobs), options.nowMs ?? Date.now());
  if (status.state === entry.state) return status;
  const state = await deps.registry.setState(batchId, status.state);
  return { ...status, state };
}
