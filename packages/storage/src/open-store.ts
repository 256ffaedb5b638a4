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

/**
 * Fails fast, naming the URI, when a store's backend is unreachable, rejects the credentials, or
 * (filesystem) its root is not a writable directory. Stores without a probe pass.
 */
export async function checkStore(store: ObjectStore): Promise<void> {
  await store.check?.();
}
