/**
 * openStore: turns a store URI into an adapter. `s3://bucket/prefix`, `file:///abs/path`, or a
 * plain filesystem path (relative ones resolve against `cwd`). Settings come in as arguments;
 * this package never reads the environment.
 */
import { isAbsolute, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { storeErrors } from './errors.ts';
import { FsObjectStore, type FsStoreOptions } from './fs-object-store.ts';
import type { ObjectStore } from './object-store.ts';
import { S3ObjectStore, type S3Settings } from './s3-object-store.ts';

export interface OpenStoreOptions {
  /** Used for `s3://` URIs. */
  readonly s3?: S3Settings;
  /** Used for `file://` URIs and paths. */
  readonly fs?: FsStoreOptions;
  /** Base of relative paths. Default `process.cwd()`. */
  readonly cwd?: string;
}

/** A parsed store URI. */
export type StoreLocation =
  | { readonly kind: 's3'; readonly bucket: string; readonly prefix: string }
  | { readonly kind: 'fs'; readonly root: string };

/** S3 bucket naming rules: 3-63 of lowercase letters, digits, '.' and '-', alphanumeric ends. */
const BUCKET_NAME = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;
const SCHEME = /^([a-zA-Z][a-zA-Z0-9+.-]*):\/\//;

/** Parses a store URI; throws KVF_STORE_BAD_URI naming it when malformed. */
export function parseStoreUri(uri: string, cwd: string = process.cwd()): StoreLocation {
  if (uri.trim() === '') throw storeErrors.badUri(uri, 'it is empty');
  const scheme = SCHEME.exec(uri)?.[1]?.toLowerCase();
  if (scheme === undefined) return { kind: 'fs', root: resolve(cwd, uri) };
  if (scheme === 's3') {
    const rest = uri.slice('s3://'.length);
    const slash = rest.indexOf('/');
    const bucket = slash < 0 ? rest : rest.slice(0, slash);
    const prefix = slash < 0 ? '' : rest.slice(slash + 1);
    if (bucket === '') throw storeErrors.badUri(uri, 'it names no bucket');
    if (!BUCKET_NAME.test(bucket)) throw storeErrors.badUri(uri, `${JSON.stringify(bucket)} is not a valid bucket name`);
    if (prefix.split('/').some((s) => s === '..' || s === '.')) {
      throw storeErrors.badUri(uri, "its prefix has a '.' or '..' segment");
    }
    return { kind: 's3', bucket, prefix };
  }
  if (scheme === 'file') {
    let root: string;
    try {
      root = fileURLToPath(uri);
    } catch (err) {
      throw storeErrors.badUri(uri, `not an absolute file URL (${(err as Error).message}); write file:///absolute/path`);
    }
    if (!isAbsolute(root)) throw storeErrors.badUri(uri, 'the file URL is not absolute');
    return { kind: 'fs', root };
  }
  throw storeErrors.badUri(uri, `the scheme ${scheme}:// is not supported`);
}

/** Opens the store a URI names. Nothing is contacted; call `checkStore` to fail fast. */
export function openStore(uri: string, options: OpenStoreOptions = {}): ObjectStore {
  const where = parseStoreUri(uri, options.cwd);
  if (where.kind === 's3') return new S3ObjectStore(where.bucket, where.prefix, options.s3);
  return new FsObjectStore(where.root, options.fs);
}

/** How long `checkStore` keeps trying a store that fails for a reason that may pass (waits 0.25, 0.5, 1, 2, 4 s). */
export const CHECK_RETRY_DELAYS_MS: readonly number[] = [250, 500, 1000, 2000, 4000];

/** Failures of an S3 store that may pass: no answer, a 5xx or an answer cut off. */
const PASSING = new Set(['KVF_STORE_UNREACHABLE', 'KVF_STORE_IO']);

/**
 * Fails, naming the URI, when a store's backend is unreachable, rejects the credentials, or
 * (filesystem) its root is not a writable directory. Stores without a probe pass. A failure that
 * may pass (an S3 store's 5xx, a dropped connection, a server still starting) is tried again with
 * backoff (`delays`, default CHECK_RETRY_DELAYS_MS) before the last error is thrown; one that cannot
 * (wrong credentials, a missing bucket, a filesystem root) is thrown at once.
 */
export async function checkStore(store: ObjectStore, delays: readonly number[] = CHECK_RETRY_DELAYS_MS): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    try {
      await store.check?.();
      return;
    } catch (err) {
      const code = (err as { code?: unknown }).code;
      const delay = delays[attempt];
      const mayPass = store.uri.startsWith('s3://') && typeof code === 'string' && PASSING.has(code);
      if (delay === undefined || !mayPass) throw err;
      await new Promise((r) => setTimeout(r, delay));
    }
  }
}
