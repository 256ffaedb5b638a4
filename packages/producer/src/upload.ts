/**
 * uploadCorpus(): documents -> shards -> object store, then the index. Shards are written to a
 * local temporary folder while packing (their keys need the corpus id, known only at the end), one
 * document at a time, so memory holds one document, never a shard. Commit order: every shard, then
 * the index.
 */
import { createReadStream } from 'node:fs';
import { createHash } from 'node:crypto';
import type { Hash } from 'node:crypto';
import { mkdtemp, open, rm } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CORPUS_INDEX_VERSION, CorpusIndex } from '@kvfold/contract';
import type { Grouping } from '@kvfold/contract';
import type { ObjectStore } from '@kvfold/storage';
import type { Document } from './document.ts';
import { ProducerError, ProducerErrorCode } from './errors.ts';
import type { IngestReport } from './report.ts';
import { DEFAULT_SHARD_BYTES, ShardLayout, corpusIdOf, corpusIndexKey, shardKey } from './shards.ts';

/** Options of {@link uploadCorpus}. */
export interface UploadOptions {
  /** Cap on one shard object (default 64 MiB). */
  readonly shardBytes?: number;
  /** Grouping the documents were made with, recorded in the index (default `file`). */
  readonly grouping?: Grouping;
  /** Where shards wait for their final key (default: a new folder under the OS temp dir). */
  readonly spoolDir?: string;
}

/** What was uploaded. */
export interface UploadResult {
  readonly corpusId: string;
  readonly indexKey: string;
  readonly index: CorpusIndex;
  /** Distinct documents in the corpus. */
  readonly documents: number;
  /** Documents dropped as identical to an earlier one (their paths are merged). */
  readonly duplicates: number;
  /** Shards written now; shards already present with the same size were left alone. */
  readonly uploadedShards: number;
  /** The ingest report, when `docs` came from `ingest()`. */
  readonly report?: IngestReport;
}

interface SpooledShard {
  readonly number: number;
  readonly file: string;
  readonly bytes: number;
  readonly sha256: string;
}

/**
 * Packs `docs` into shards and uploads them with the index to `store` under
 * `corpora/<corpusId>/`. Uploading the same corpus again rewrites nothing that is already there.
 * Throws `KVF_CORPUS_NO_DOCUMENTS` when `docs` is empty.
 */
export async function uploadCorpus(
  store: ObjectStore,
  docs: AsyncIterable<Document> & { readonly report?: IngestReport },
  options: UploadOptions = {},
): Promise<UploadResult> {
  const shardBytes = options.shardBytes ?? DEFAULT_SHARD_BYTES;
  const grouping = options.grouping ?? 'file';
  const spool = await mkdtemp(join(options.spoolDir ?? tmpdir(), 'kvfold-shards-'));
  try {
    const layout = new ShardLayout(shardBytes);
    const spooled: SpooledShard[] = [];
    let current: { number: number; file: string; handle: FileHandle; hash: Hash; bytes: number } | undefined;
    const close = async () => {
      if (!current) return;
      await current.handle.close();
      spooled.push({ number: current.number, file: current.file, bytes: current.bytes, sha256: current.hash.digest('hex') });
      current = undefined;
    };
    try {
      for await (const doc of docs) {
        const placement = layout.add({ docId: doc.docId, paths: doc.paths, length: doc.bytes.byteLength });
        if (!placement) continue;
        if (placement.closed !== undefined) await close();
        if (!current) {
          const file = join(spool, `${placement.placed.shard}.bin`);
          current = { number: placement.placed.shard, file, handle: await open(file, 'w'), hash: createHash('sha256'), bytes: 0 };
        }
        await current.handle.write(doc.bytes);
        current.hash.update(doc.bytes);
        current.bytes += doc.bytes.byteLength;
      }
      layout.finish();
      await close();
    } finally {
      await current?.handle.close();
    }
    if (layout.documents.length === 0) {
      throw new ProducerError(ProducerErrorCode.NoDocuments, 'no documents to upload: every input was empty, skipped or refused (see the ingest report)');
    }

    const corpusId = corpusIdOf(layout.documents, shardBytes, grouping);
    let uploadedShards = 0;
    for (const shard of spooled) {
      const key = shardKey(corpusId, shard.number);
      const existing = await store.head(key);
      if (existing && existing.size === shard.bytes) continue;
      await store.put(key, createReadStream(shard.file), { contentType: 'application/octet-stream' });
      uploadedShards += 1;
    }

    const index = CorpusIndex.parse({
      version: CORPUS_INDEX_VERSION,
      corpusId,
      grouping,
      shardBytes,
      shards: spooled.map((s) => ({ key: shardKey(corpusId, s.number), bytes: s.bytes, sha256: s.sha256 })),
      documents: layout.documents.map((d) => ({
        docId: d.docId,
        paths: d.paths,
        shard: { key: shardKey(corpusId, d.shard), offset: d.offset, length: d.length },
        bytes: d.length,
        sha256: d.docId,
      })),
    });
    const indexKey = corpusIndexKey(corpusId);
    await store.put(indexKey, new Uint8Array(Buffer.from(`${JSON.stringify(index, null, 1)}\n`)), { contentType: 'application/json' });
    return {
      corpusId,
      indexKey,
      index,
      documents: index.documents.length,
      duplicates: layout.duplicates,
      uploadedShards,
      ...(docs.report ? { report: docs.report } : {}),
    };
  } finally {
    await rm(spool, { recursive: true, force: true });
  }
}
