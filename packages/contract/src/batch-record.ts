/**
 * BatchRecord: what the registry keeps about a batch besides its queue jobs — the spec, where its
 * documents came from and what ingest reported.
 */
import { z } from 'zod';
import { BatchSpec } from './batch-spec.ts';
import { BatchId } from './document-job.ts';
import { NonEmpty, Sha256Hex, intAtLeast } from './fields.ts';

/** Counts from the ingest report of the uploads a batch was made from (zero for stored corpora). */
export const IngestSummary = z.strictObject({
  files: intAtLeast(0),
  documents: intAtLeast(0),
  bytes: intAtLeast(0),
  ignored: intAtLeast(0),
  skipped: intAtLeast(0),
  refused: intAtLeast(0),
});
export type IngestSummary = z.output<typeof IngestSummary>;

/** The registry's record of one batch. Written once, when the batch is created. */
export const BatchRecord = z.strictObject({
  id: BatchId,
  spec: BatchSpec,
  createdAt: z.iso.datetime(),
  /** Distinct documents enqueued. */
  documents: intAtLeast(0),
  /** UTF-8 bytes of all documents (the base of token estimates before workers report counts). */
  totalBytes: intAtLeast(0),
  corpusIds: z.array(Sha256Hex).min(1),
  /** Corpus index keys the batch was built from. */
  corpus: z.array(NonEmpty).min(1),
  ingest: IngestSummary,
});
export type BatchRecord = z.output<typeof BatchRecord>;
export type BatchRecordInput = z.input<typeof BatchRecord>;

/** How one document of a batch ended, as recorded in the registry. */
export const DocumentOutcomeStatus = z.enum(['completed', 'failed', 'cancelled', 'removed']);
export type DocumentOutcomeStatus = z.output<typeof DocumentOutcomeStatus>;

/** What a worker (or the API, for `removed`) records when a document is done. */
export interface DocumentOutcome {
  readonly docId: string;
  /**
   * `completed`/`failed`: the fold ended (the job returns its DocumentResult).
   * `cancelled`: a worker stopped an active fold because the batch was cancelled.
   * `removed`: a caller took a waiting job off the queue before any worker saw it. Cancel does
   * not count these one by one (it removes every waiting job in one script); once cancel was asked,
   * the status counts every document neither finished nor active as cancelled.
   */
  readonly status: DocumentOutcomeStatus;
  /** Tokens folded (the document's token count when completed; 0 when removed). */
  readonly tokens: number;
  /** UTF-8 bytes of the document (DocumentJob.bytes). */
  readonly bytes: number;
}

/** Per-batch counters kept by the registry, each bumped once per document. */
export interface BatchCounters {
  readonly completed: number;
  readonly failed: number;
  /** Stopped while active by a worker. */
  readonly cancelled: number;
  /** Removed from the queue before starting. */
  readonly removed: number;
  /** Tokens folded by the documents recorded so far. */
  readonly tokens: number;
  /** Bytes of the documents recorded so far. */
  readonly bytes: number;
}
