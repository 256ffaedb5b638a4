/**
 * The corpus index: the JSON file the producer uploads beside its shards, listing where each
 * document's bytes are. Workers and the API read it; the producer writes it.
 */
import { z } from 'zod';
import { Grouping } from './batch-spec.ts';
import { NonEmpty, Sha256Hex, intAtLeast } from './fields.ts';

/** Where one document's UTF-8 bytes live: a byte range of a shard object. */
export const ShardRef = z.strictObject({
  /** Store key of the shard object, e.g. `corpora/<corpusId>/shards/00000.bin`. */
  key: NonEmpty,
  /** First byte of the document inside the shard. */
  offset: intAtLeast(0),
  /** Length in bytes. */
  length: intAtLeast(1),
});
export type ShardRef = z.output<typeof ShardRef>;

/** One document of a corpus. */
export const CorpusDocument = z.strictObject({
  /** sha256 of the document's UTF-8 text; also its identity. */
  docId: Sha256Hex,
  /** Source paths (several when files were grouped, or identical files deduplicated). */
  paths: z.array(NonEmpty).min(1),
  shard: ShardRef,
  /** Byte size of the text (equals shard.length). */
  bytes: intAtLeast(1),
  /** sha256 of the bytes (equals docId; kept explicit for readers that verify). */
  sha256: Sha256Hex,
});
export type CorpusDocument = z.output<typeof CorpusDocument>;

/** Version of the index layout written by this code. */
export const CORPUS_INDEX_VERSION = 1;

/** The whole index file. */
export const CorpusIndex = z.strictObject({
  version: z.literal(CORPUS_INDEX_VERSION),
  corpusId: z.string().regex(/^[0-9a-f]{64}$/, { error: 'must be a lowercase hex sha256' }),
  grouping: Grouping,
  /** Cap on a shard object's size used when packing. */
  shardBytes: intAtLeast(1),
  shards: z.array(z.strictObject({ key: NonEmpty, bytes: intAtLeast(0), sha256: Sha256Hex })),
  documents: z.array(CorpusDocument),
});
export type CorpusIndex = z.output<typeof CorpusIndex>;
