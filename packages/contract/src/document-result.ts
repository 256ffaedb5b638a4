/**
 * DocumentResult: what a worker reports for one document (the job's return value and the
 * per-document line of a batch's results JSONL).
 */
import { z } from 'zod';
import { BatchId } from './document-job.ts';
import { NonEmpty, Sha256Hex, intAtLeast } from './fields.ts';

/** One answered query. */
export const Answer = z.strictObject({
  query: z.string(),
  text: z.string(),
  tokenIds: z.array(intAtLeast(0)),
});
export type Answer = z.output<typeof Answer>;

const nonNegative = z.number().min(0, { error: 'must be >= 0' });

/** Wall-clock accounting of one fold. */
export const Timings = z.strictObject({
  /** Fetching and decoding the document. */
  loadMs: nonNegative,
  /** Folding all chunks (prefill). */
  foldMs: nonNegative,
  /** Answering all queries. */
  generateMs: nonNegative,
  totalMs: nonNegative,
  /** Folded tokens per second of foldMs. */
  tokensPerSecond: nonNegative,
});
export type Timings = z.output<typeof Timings>;

/** Outcome of one document. A failed document carries `error`. */
export const DocumentResult = z
  .strictObject({
    batchId: BatchId,
    docId: Sha256Hex,
    paths: z.array(NonEmpty).min(1),
    status: z.enum(['completed', 'failed']),
    tokens: intAtLeast(0),
    steps: intAtLeast(0),
    chunkSize: intAtLeast(1),
    /** The KV policy the fold ran with, as `kvfold fold --json` and checkpoints name it (`full`, `streaming(sink=4,window=1024)`). */
    policy: NonEmpty.optional(),
    timings: Timings,
    /** Bytes of the KV cache at the end of the fold. */
    kvBytes: intAtLeast(0),
    /** Mean negative log-likelihood per chunk, when measured. */
    nll: z.array(z.number()).optional(),
    answers: z.array(Answer),
    /** Step the fold resumed from (0 when it started fresh). */
    resumedFromStep: intAtLeast(0),
    checkpoint: z.strictObject({ segments: intAtLeast(0), bytes: intAtLeast(0) }),
    attempts: intAtLeast(1),
    /** Things the user should know that did not stop the fold, e.g. text that mapped to <unk>. */
    warnings: z.array(NonEmpty).optional(),
    error: z.strictObject({ code: NonEmpty, message: NonEmpty }).optional(),
  })
  .refine((r) => (r.status === 'failed') === (r.error !== undefined), {
    error: "error must be present exactly when status is 'failed'",
    path: ['error'],
  });
export type DocumentResult = z.output<typeof DocumentResult>;
