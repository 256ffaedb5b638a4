/**
 * Errors of @kvfold/fold-core that callers branch on. Arithmetic misuse (a chunk size of 0, rows
 * of the wrong shape) is a RangeError; these are the cache's own refusals.
 *
 * | code              | when                                                                       |
 * |-------------------|----------------------------------------------------------------------------|
 * | KVF_KV_NO_MEMORY  | the cache cannot be allocated or grown: the message names rows and bytes   |
 * | KVF_KV_REWIND     | a rewind to a point the cache does not hold (past its end, before its start)|
 * | KVF_KV_RELEASED   | an operation on a released cache                                           |
 */
export const KvCacheErrorCode = {
  NoMemory: 'KVF_KV_NO_MEMORY',
  Rewind: 'KVF_KV_REWIND',
  Released: 'KVF_KV_RELEASED',
} as const;

export type KvCacheErrorCode = (typeof KvCacheErrorCode)[keyof typeof KvCacheErrorCode];

export class KvCacheError extends Error {
  override readonly name = 'KvCacheError';
  constructor(
    readonly code: KvCacheErrorCode,
    message: string,
  ) {
    super(message);
  }
}
