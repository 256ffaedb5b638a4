/**
 * The data of queue jobs: one DocumentJob per document, one BatchJob (the flow parent) per batch.
 */
import { z } from 'zod';
import { FoldSettings } from './batch-spec.ts';
import { ShardRef } from './corpus-index.ts';
import { NonEmpty, Sha256Hex, intAtLeast } from './fields.ts';

/** A batch id: `b` + 32 hex chars (see `deriveBatchId`). */
export const BatchId = z.string().regex(/^b[0-9a-f]{32}$/, { error: 'must be a batch id (b + 32 hex chars)' });

/** Everything a worker needs to fold one document, with no other lookup than the store. */
export const DocumentJob = z.strictObject({
  batchId: BatchId,
  /** sha256 of the document text. */
  docId: Sha256Hex,
  corpusId: Sha256Hex,
  shard: ShardRef,
  paths: z.array(NonEmpty).min(1),
  /** UTF-8 byte size of the document. */
  bytes: intAtLeast(1),
  fold: FoldSettings,
});
export type DocumentJob = z.output<typeof DocumentJob>;
export type DocumentJobInput = z.input<typeof DocumentJob>;

/** The flow parent: runs once every document of the batch has completed or failed. */
export const BatchJob = z.strictObject({
  batchId: BatchId,
  corpusIds: z.array(Sha256Hex).min(1),
  /** Index keys the batch was built from. */
  corpus: z.array(NonEmpty).min(1),
  documents: intAtLeast(0),
  fold: FoldSettings,
  createdAt: z.iso.datetime(),
});
export type BatchJob = z.output<typeof BatchJob>;
