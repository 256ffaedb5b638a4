/**
 * Model folders in an object store: `pushModel` streams every file of a folder up (files of any
 * size; nothing is read whole) and writes, last, a small manifest that names the model's
 * fingerprint and each file's size. A reader trusts the manifest, never the listing: it fetches
 * the files the manifest names and checks the fetched folder has the manifest's fingerprint.
 */
import { createReadStream } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { MODEL_MARKER } from '@kvfold/model-zoo';
import { FolderHash, ModelError, readModelFolder } from '@kvfold/onnx';
import { type ObjectStore, type OpenStoreOptions, openStore } from '@kvfold/storage';

/** The manifest's key beside a pushed model's files. */
export const MODEL_MANIFEST = 'kvfold-model.json';
/** Bytes a file read moves at once while pushing: big reads, few calls. */
const READ_CHUNK = 1024 * 1024;

/** What `pushModel` writes to MODEL_MANIFEST. */
export interface ModelManifest {
  readonly format: 1;
  /** The model's fingerprint (`LoadedModel.fingerprints.model`) as pushed. */
  readonly fingerprint: string;
  /** Every file of the folder, relative, with its size in bytes. */
  readonly files: readonly { readonly path: string; readonly size: number }[];
}

/** Opens the store location a model URI names (its files sit under the URI as a prefix). */
export function openModelStore(uri: string, storeOptions: OpenStoreOptions = {}): ObjectStore {
  return openStore(uri.endsWith('/') ? uri : `${uri}/`, storeOptions);
}

/** Closes an S3 store's sockets; other stores hold none. */
export function closeStore(store: ObjectStore): void {
  (store as { destroy?: () => void }).destroy?.();
}

/**
 * Uploads a model folder to a store location, so workers can load it by URI. Every file of the
 * folder goes up under the URI's prefix, streamed, then the manifest, which a fetch reads first:
 * until it is written the push is not visible as a whole.
 */
export async function pushModel(
  dir: string,
  uri: string,
  storeOptions: OpenStoreOptions = {},
): Promise<{ files: number; bytes: number; fingerprint: string }> {
  const root = resolve(dir);
  const files: string[] = [];
  const walk = async (rel: string): Promise<void> => {
    for (const e of await readdir(join(root, rel), { withFileTypes: true })) {
      const path = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) await walk(path);
      // The marker of a folder kvfold wrote is bookkeeping of that folder, not part of the model.
      else if (e.isFile() && path !== MODEL_MANIFEST && path !== MODEL_MARKER) files.push(path);
    }
  };
  await walk('').catch((err: NodeJS.ErrnoException) => {
    throw new ModelError('KVF_MODEL_NOT_FOUND', `cannot read model folder ${root} (${err.code ?? err.message}); pass a model folder to push`);
  });
  if (!files.includes('config.json')) throw new ModelError('KVF_MODEL_NOT_FOUND', `${root} has no config.json: not a model folder`);
  // The files that enter the fingerprint, hashed as they stream up: one read of each file in all.
  const fingerprinted = new Set((await readModelFolder(root)).files);
  const hash = new FolderHash();
  const store = openModelStore(uri, storeOptions);
  try {
    const listed: { path: string; size: number }[] = [];
    for (const f of files.sort()) {
      const path = join(root, f);
      const { size } = await stat(path);
      if (fingerprinted.has(f)) hash.file(f);
      await store.put(f, fileChunks(path, fingerprinted.has(f) ? hash : null), { size });
      listed.push({ path: f, size });
    }
    const fingerprint = hash.digest();
    const manifest: ModelManifest = { format: 1, fingerprint, files: listed };
    await store.put(MODEL_MANIFEST, new TextEncoder().encode(`${JSON.stringify(manifest, null, 1)}\n`), { contentType: 'application/json' });
    return { files: files.length, bytes: listed.reduce((n, f) => n + f.size, 0), fingerprint };
  } finally {
    closeStore(store);
  }
}

/** A file's bytes, fed to `hash` on the way. */
async function* fileChunks(path: string, hash: FolderHash | null): AsyncGenerator<Uint8Array> {
  for await (const chunk of createReadStream(path, { highWaterMark: READ_CHUNK })) {
    hash?.update(chunk as Buffer);
    yield chunk as Buffer;
  }
}

/** Parses a manifest read from `uri`, refusing one this code did not write. */
export function parseManifest(bytes: Uint8Array, uri: string): ModelManifest {
  const bad = (why: string) =>
    new ModelError('KVF_MODEL_MALFORMED', `${uri}/${MODEL_MANIFEST} is not a model manifest (${why}); push the model again (kvfold models push)`);
  let value: unknown;
  try {
    value = JSON.parse(new TextDecoder().decode(bytes));
  } catch (err) {
    throw bad((err as Error).message);
  }
  const m = value as Partial<ModelManifest> | null;
  if (m?.format !== 1) throw bad('expected format 1');
  if (typeof m.fingerprint !== 'string' || !m.fingerprint.startsWith('sha256:')) throw bad('no fingerprint');
  if (!Array.isArray(m.files) || m.files.some((f) => typeof f?.path !== 'string' || !Number.isSafeInteger(f?.size) || f.size < 0)) {
    throw bad('files must list { path, size }');
  }
  return { format: 1, fingerprint: m.fingerprint, files: m.files.map((f) => ({ path: f.path, size: f.size })) };
}
