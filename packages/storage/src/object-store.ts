/**
 * The ObjectStore port: the few operations KV-Fold needs from S3 or a filesystem.
 *
 * Keys are relative, '/'-separated paths under the store's root (its URI prefix).
 */
import type { Readable } from 'node:stream';

export type Body = Uint8Array | Readable | AsyncIterable<Uint8Array>;

export interface PutOptions {
  /** Only create: fail with `PreconditionFailed` when the key exists (S3 `If-None-Match: *`). */
  readonly ifNoneMatch?: '*';
  /** Only replace this version: fail with `PreconditionFailed` otherwise (S3 `If-Match`). */
  readonly ifMatch?: string;
  readonly contentType?: string;
  /**
   * The body's length in bytes, when known (a file's size). An S3 put then picks a part size that
   * keeps a multipart upload within S3's 10,000 parts, and fails if the body is not that long.
   */
  readonly size?: number;
}

export interface ObjectInfo {
  readonly key: string;
  readonly size: number;
  /** Opaque version tag; pass it back as `ifMatch`. */
  readonly etag: string;
  readonly lastModified?: Date;
}

/** Inclusive-exclusive byte range: [start, end). `end` omitted means to the end of the object. */
export interface ByteRange {
  readonly start: number;
  readonly end?: number;
}

export interface ObjectStore {
  /** The URI this store was opened from, for messages. */
  readonly uri: string;
  /** Whether `ifNoneMatch` / `ifMatch` are enforced by the backend itself. */
  readonly conditionalWrites: boolean;
  put(key: string, body: Body, options?: PutOptions): Promise<{ etag: string }>;
  /** Streams an object (or a range of it). Throws `NotFound` when absent. */
  get(key: string, range?: ByteRange): Promise<Readable>;
  /**
   * Reads a whole object (or a range) into one buffer. Throws `NotFound` when absent and
   * KVF_STORE_TOO_LARGE above the largest buffer Node can allocate; stream big objects with `get`.
   */
  getBytes(key: string, range?: ByteRange): Promise<Uint8Array>;
  /** Metadata, or null when absent. */
  head(key: string): Promise<ObjectInfo | null>;
  /** Every object whose key starts with `prefix`, in key order. */
  list(prefix: string): AsyncIterable<ObjectInfo>;
  /** Removes a key; absent keys are not an error. */
  delete(key: string): Promise<void>;
  /**
   * Optional probe: fails fast (naming the URI) when the backend is unreachable or rejects the
   * credentials. Wrappers that do not implement it are treated as healthy by `checkStore`.
   */
  check?(): Promise<void>;
}
