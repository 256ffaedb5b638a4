/**
 * ResultLine: one line of a batch's results.jsonl — the document's DocumentResult, or, for a
 * document that left no result object (its job failed outright, or it was cancelled first),
 * a stub with the error that explains why.
 */
import { z } from 'zod';
import { BatchId } from './document-job.ts';
import { DocumentResult } from './document-result.ts';
import { NonEmpty, Sha256Hex } from './fields.ts';

/** A document without a result object. */
export const ResultStub = z.strictObject({
  batchId: BatchId,
  docId: Sha256Hex,
  status: z.enum(['failed', 'cancelled']),
  error: z.strictObject({ code: NonEmpty, message: NonEmpty }),
});
export type ResultStub = z.output<typeof ResultStub>;

/** A line of results.jsonl. */
export const ResultLine = z.union([DocumentResult, ResultStub]);
export type ResultLine = z.output<typeof ResultLine>;
