/**
 * The storage error catalogue: every error this package throws carries a stable `code`.
 *
 * | code                          | when                                                        |
 * |-------------------------------|-------------------------------------------------------------|
 * | KVF_STORE_NOT_FOUND           | the key does not exist (class `ObjectNotFoundError`)        |
 * | KVF_STORE_PRECONDITION_FAILED | `ifNoneMatch` / `ifMatch` did not hold (`PreconditionFailedError`) |
 * | KVF_STORE_BAD_URI             | a store URI that cannot be opened                           |
 * | KVF_STORE_BAD_KEY             | a key that is empty, absolute, has `..` or reserved names   |
 * | KVF_STORE_BAD_RANGE           | a byte range with negative start or end before start        |
 * | KVF_STORE_UNREACHABLE         | the endpoint refused, timed out or does not resolve         |
 * | KVF_STORE_CREDENTIALS         | the backend rejected the credentials (403, bad key/secret)  |
 * | KVF_STORE_NO_BUCKET           | the bucket named in an s3:// URI does not exist             |
 * | KVF_STORE_LOCKED              | a filesystem key lock was held longer than the lock timeout |
 * | KVF_STORE_TOO_LARGE           | `getBytes` of an object larger than one buffer can hold     |
 * | KVF_STORE_NO_CONDITIONAL_WRITES | an S3 backend that does not enforce If-None-Match / If-Match |
 * | KVF_STORE_IO                  | any other backend failure (disk full, permissions, 5xx)     |
 */

export const StoreErrorCode = {
  NotFound: 'KVF_STORE_NOT_FOUND',
  PreconditionFailed: 'KVF_STORE_PRECONDITION_FAILED',
  BadUri: 'KVF_STORE_BAD_URI',
  BadKey: 'KVF_STORE_BAD_KEY',
  BadRange: 'KVF_STORE_BAD_RANGE',
  Unreachable: 'KVF_STORE_UNREACHABLE',
  Credentials: 'KVF_STORE_CREDENTIALS',
  NoBucket: 'KVF_STORE_NO_BUCKET',
  Locked: 'KVF_STORE_LOCKED',
  TooLarge: 'KVF_STORE_TOO_LARGE',
  NoConditionalWrites: 'KVF_STORE_NO_CONDITIONAL_WRITES',
  Io: 'KVF_STORE_IO',
} as const;

export type StoreErrorCode = (typeof StoreErrorCode)[keyof typeof StoreErrorCode];

/** Base class of every storage error; branch on `code` or on the two subclasses below. */
export class StoreError extends Error {
  readonly code: StoreErrorCode;

  constructor(code: StoreErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'StoreError';
    this.code = code;
  }
}

/** The object does not exist. */
export class ObjectNotFoundError extends StoreError {
  readonly key: string;

  constructor(uri: string, key: string, options?: { cause?: unknown }) {
    super('KVF_STORE_NOT_FOUND', `no object ${key} in ${uri}`, options);
    this.name = 'ObjectNotFoundError';
    this.key = key;
  }
}

/** A conditional put lost: the key existed (`ifNoneMatch`) or changed (`ifMatch`). */
export class PreconditionFailedError extends StoreError {
  readonly key: string;

  constructor(uri: string, key: string, detail: string, options?: { cause?: unknown }) {
    super(
      'KVF_STORE_PRECONDITION_FAILED',
      `conditional write of ${key} in ${uri} refused: ${detail} (another writer got there first; re-read and retry or give up)`,
      options,
    );
    this.name = 'PreconditionFailedError';
    this.key = key;
  }
}

/** Factories for the remaining codes, so messages stay uniform. */
export const storeErrors = {
  badUri: (uri: string, why: string) =>
    new StoreError(
      'KVF_STORE_BAD_URI',
      `cannot open store ${JSON.stringify(uri)}: ${why} (expected s3://bucket/prefix, file:///absolute/path or a filesystem path)`,
    ),
  badKey: (uri: string, key: string, why: string) =>
    new StoreError('KVF_STORE_BAD_KEY', `key ${JSON.stringify(key)} in ${uri} is not allowed: ${why}`),
  badRange: (uri: string, key: string, start: number, end: number | undefined) =>
    new StoreError(
      'KVF_STORE_BAD_RANGE',
      `byte range [${start}, ${end ?? 'end'}) of ${key} in ${uri} is invalid (need 0 <= start <= end)`,
    ),
  unreachable: (uri: string, endpoint: string, cause: unknown) =>
    new StoreError(
      'KVF_STORE_UNREACHABLE',
      `store ${uri} is unreachable at ${endpoint}: ${describe(cause)} (check the endpoint setting and that the server is up)`,
      { cause },
    ),
  credentials: (uri: string, cause: unknown) =>
    new StoreError(
      'KVF_STORE_CREDENTIALS',
      `store ${uri} rejected the credentials: ${describe(cause)} (check the access key id and secret)`,
      { cause },
    ),
  noBucket: (uri: string, bucket: string, cause?: unknown) =>
    new StoreError('KVF_STORE_NO_BUCKET', `bucket ${bucket} of ${uri} does not exist (create it first)`, {
      cause,
    }),
  locked: (uri: string, key: string, lockPath: string, waitedMs: number) =>
    new StoreError(
      'KVF_STORE_LOCKED',
      `key ${key} in ${uri} stayed locked for ${waitedMs} ms by ${lockPath} (another writer is stuck; remove the lock file if no process is writing)`,
    ),
  tooLarge: (uri: string, key: string, size: number, limit: number) =>
    new StoreError(
      'KVF_STORE_TOO_LARGE',
      `${key} in ${uri} is ${size} bytes, more than one in-memory buffer holds (${limit} bytes); read it as a stream with get()`,
    ),
  io: (uri: string, what: string, cause: unknown) =>
    new StoreError('KVF_STORE_IO', `${what} in ${uri} failed: ${describe(cause)}`, { cause }),
};

/** A short description of an unknown thrown value: its code/name and message. */
export function describe(err: unknown): string {
  if (err instanceof Error) {
    const code = (err as { code?: unknown }).code;
    const tag = typeof code === 'string' ? code : err.name;
    return err.message ? `${tag}: ${err.message}` : tag;
  }
  return String(err);
}
