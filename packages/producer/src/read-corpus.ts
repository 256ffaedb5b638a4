/**
 * Reading back what uploadCorpus wrote: a corpus index, and one document by ranged get,
 * verified against its sha256.
 */
import { CorpusIndex, formatZodError } from '@kvfold/contract';
import type { ShardRef } from '@kvfold/contract';
import type { ObjectStore } from '@kvfold/storage';
import { createHash } from 'node:crypto';
import { ProducerError, ProducerErrorCode } from './errors.ts';

/** Reads and validates the corpus index at `key` (e.g. `corpora/<id>/index.json`). */
export async function readCorpusIndex(store: ObjectStore, key: string): Promise<CorpusIndex> {
  const bytes = await store.getBytes(key);
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(bytes).toString('utf8'));
  } catch (error) {
    throw new ProducerError(ProducerErrorCode.IndexInvalid, `corpus index ${key} in ${store.uri} is not JSON: ${(error as Error).message}`);
  }
  const parsed = CorpusIndex.safeParse(value);
  if (!parsed.success) {
    throw new ProducerError(
      ProducerErrorCode.IndexInvalid,
      `corpus index ${key} in ${store.uri} is invalid: ${formatZodError(parsed.error)} (re-upload the corpus)`,
    );
  }
  return parsed.data;
}

/**
 * Reads one document: a ranged get of `ref` in its shard, checked against `sha256` (the doc id),
 * decoded as UTF-8. Throws `KVF_CORPUS_DIGEST_MISMATCH` if the bytes are not the document and
 * `KVF_CORPUS_NOT_UTF8` if they are not UTF-8.
 */
export async function readDocument(store: ObjectStore, ref: ShardRef, sha256: string): Promise<string> {
  const end = ref.offset + ref.length;
  const bytes = await store.getBytes(ref.key, { start: ref.offset, end });
  const actual = createHash('sha256').update(bytes).digest('hex');
  if (bytes.byteLength !== ref.length || actual !== sha256) {
    throw new ProducerError(
      ProducerErrorCode.DigestMismatch,
      `document ${sha256} at ${ref.key}[${ref.offset}, ${end}) in ${store.uri} read ${bytes.byteLength} bytes hashing to ${actual}: ` +
        'the shard is corrupt or the index is stale; re-upload the corpus',
    );
  }
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch (error) {
    throw new ProducerError(
      ProducerErrorCode.NotUtf8,
      `document ${sha256} at ${ref.key} in ${store.uri} is not UTF-8 (${(error as Error).message}); the corpus was not written by kvfold's producer: re-upload it`,
    );
  }
}
