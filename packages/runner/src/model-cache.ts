/**
 * Models as artifacts: a worker gets a model by reference — a local folder, or a folder in an
 * object store — fetches it into a local cache, verifies its fingerprint, and keeps one loaded
 * session per model.
 *
 * Every `get` looks at the source first (one listing, and for a pushed model its small manifest),
 * so a model replaced in the store or rebuilt in its folder is noticed at the next use and loaded
 * anew; the unchanged case costs that one look. A store's model is fetched file by file as
 * streams into `<cacheDir>/<uri hash>/<version hash>/`, renamed into place once whole. Loading
 * fingerprints the folder (@kvfold/onnx reads every byte); the fingerprint must equal the one the
 * manifest names (or, for a folder pushed without one, the one recorded when it was fetched),
 * else the copy is fetched once more and then refused.
 */
import { createHash, randomUUID } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { KvDtype } from '@kvfold/fold-core';
import { type Device, type LoadedModel, loadModel, ModelError } from '@kvfold/onnx';
import { FsObjectStore, type ObjectInfo, type OpenStoreOptions } from '@kvfold/storage';
import { closeStore, MODEL_MANIFEST, type ModelManifest, openModelStore, parseManifest } from './model-push.ts';

/** A model reference as batch specs carry it: a URI or path, optionally pinned to a fingerprint. */
export type ModelRefValue = string | { readonly uri: string; readonly fingerprint?: string | undefined };

export interface ModelCacheOptions {
  /** Where fetched model folders are kept. */
  readonly cacheDir: string;
  readonly device?: Device;
  readonly threads?: number;
  /**
   * Documents whose steps may share one session run (the documents folded at once on this
   * process): each model's session serves that many caches a run (OnnxDecoder's slots). Default 1.
   */
  readonly slots?: number;
  /** Opens `s3://` model URIs (endpoint, credentials). */
  readonly storeOptions?: OpenStoreOptions;
}

/** What a look at a model's source found. */
interface Source {
  /** Changes whenever the model does: its manifest's fingerprint, else a hash of its listing. */
  readonly version: string;
  readonly manifest: ModelManifest | null;
  /** The objects (or files) there, by key. */
  readonly objects: ReadonlyMap<string, ObjectInfo>;
}

interface Entry {
  readonly version: string;
  readonly model: Promise<LoadedModel>;
}

/** Hex digits of a sha256 used in cache folder names. */
const NAME_DIGITS = 32;

export class ModelCache {
  private readonly entries = new Map<string, Entry>();
  /** Models replaced by a newer version; jobs may still fold with them, so they close with the cache. */
  private readonly superseded: Promise<LoadedModel>[] = [];

  constructor(private readonly options: ModelCacheOptions) {}

  /** How `s3://` models are opened (for a look at a model before any work: checkModelRef). */
  get storeOptions(): OpenStoreOptions {
    return this.options.storeOptions ?? {};
  }

  /**
   * The loaded model for a reference, its caches held at `kvDtype` (default: the export's):
   * fetched and verified on first use, reloaded when its source changed. Each width is a session
   * of its own (the graph that widens the past differs), so a worker asked for two widths of one
   * model holds its weights twice.
   */
  async get(ref: ModelRefValue, kvDtype?: KvDtype): Promise<LoadedModel> {
    const { uri, fingerprint: pinned } = typeof ref === 'string' ? { uri: ref, fingerprint: undefined } : ref;
    const source = await this.inspect(uri);
    if (pinned && source.manifest && source.manifest.fingerprint !== pinned) throw pinnedMismatch(uri, source.manifest.fingerprint, pinned);
    const key = `${uri}\u0000${kvDtype ?? ''}`;
    let entry = this.entries.get(key);
    if (entry?.version !== source.version) {
      if (entry) this.superseded.push(entry.model);
      const fresh: Entry = { version: source.version, model: this.load(uri, source, kvDtype) };
      fresh.model.catch(() => {
        if (this.entries.get(key) === fresh) this.entries.delete(key);
      });
      this.entries.set(key, fresh);
      entry = fresh;
    }
    const model = await entry.model;
    if (pinned && model.fingerprints.model !== pinned) throw pinnedMismatch(uri, model.fingerprints.model, pinned);
    return model;
  }

  async close(): Promise<void> {
    const all = await Promise.allSettled([...[...this.entries.values()].map((e) => e.model), ...this.superseded]);
    this.entries.clear();
    this.superseded.length = 0;
    await Promise.all(all.map((r) => (r.status === 'fulfilled' ? r.value.close() : undefined)));
  }

  /** One listing of the source (and its manifest, if any): what version of the model is there now. */
  private async inspect(uri: string): Promise<Source> {
    const remote = isRemote(uri);
    const store = remote ? openModelStore(uri, this.options.storeOptions) : new FsObjectStore(localPath(uri));
    try {
      const objects = new Map<string, ObjectInfo>();
      for await (const o of store.list('')) objects.set(o.key, o);
      const manifest = remote && objects.has(MODEL_MANIFEST) ? parseManifest(await store.getBytes(MODEL_MANIFEST), uri) : null;
      if (remote && objects.size === 0) {
        throw new ModelError('KVF_MODEL_NOT_FOUND', `model ${uri} holds no objects; upload the model folder there (kvfold models push)`);
      }
      const listing = [...objects.values()].map((o) => [o.key, o.size, o.etag]);
      return { version: manifest ? manifest.fingerprint : `listing:${sha256(JSON.stringify(listing))}`, manifest, objects };
    } finally {
      closeStore(store);
    }
  }

  private async load(uri: string, source: Source, kvDtype: KvDtype | undefined): Promise<LoadedModel> {
    const sessionOptions = {
      ...(this.options.device ? { device: this.options.device } : {}),
      ...(this.options.threads ? { threads: this.options.threads } : {}),
      ...(this.options.slots && this.options.slots > 1 ? { slots: this.options.slots } : {}),
      ...(kvDtype ? { kvDtype } : {}),
    };
    if (!isRemote(uri)) return loadModel(localPath(uri), sessionOptions);
    const home = join(this.options.cacheDir, sha256(uri).slice(0, NAME_DIGITS));
    const dir = join(home, sha256(source.version).slice(0, NAME_DIGITS));
    const record = `${dir}.json`;
    for (let attempt = 1; ; attempt++) {
      if (!(await stat(dir).catch(() => null))) await this.fetch(uri, source, dir);
      const model = await loadModel(dir, sessionOptions);
      const expected = source.manifest?.fingerprint ?? (await readRecord(record))?.fingerprint;
      if (expected === undefined || model.fingerprints.model === expected) {
        await writeFile(record, `${JSON.stringify({ uri, version: source.version, fingerprint: model.fingerprints.model })}\n`);
        await removeOtherVersions(home, dir);
        return model;
      }
      await model.close();
      await rm(dir, { recursive: true, force: true });
      if (attempt === 2) {
        const said = source.manifest ? `the ${expected} its ${MODEL_MANIFEST} names` : `the ${expected} it had when first fetched`;
        throw new ModelError(
          'KVF_MODEL_MALFORMED',
          `model ${uri}, fetched twice into ${dir}, has fingerprint ${model.fingerprints.model}, not ${said}: the copy in the store is damaged or being replaced; push it again (kvfold models push)`,
        );
      }
    }
  }

  /** Streams the model's files from the store into `dir`, whole or not at all. */
  private async fetch(uri: string, source: Source, dir: string): Promise<void> {
    const wanted = source.manifest?.files ?? [...source.objects.values()].map((o) => ({ path: o.key, size: o.size }));
    for (const f of wanted) {
      const found = source.objects.get(f.path);
      if (found?.size !== f.size) {
        throw new ModelError(
          'KVF_MODEL_NOT_FOUND',
          `model ${uri} is incomplete: its ${MODEL_MANIFEST} lists ${f.path} (${f.size} bytes) but the store ${found ? `has ${found.size} bytes` : 'has no such object'}; wait for a push in progress to finish, or push the model again`,
        );
      }
    }
    const store = openModelStore(uri, this.options.storeOptions);
    const staging = `${dir}.partial-${process.pid}-${randomUUID().slice(0, 8)}`;
    try {
      for (const f of wanted) {
        const body = await store.get(f.path); // refuses keys that could leave the folder
        const path = join(staging, ...f.path.split('/'));
        await mkdir(dirname(path), { recursive: true });
        await pipeline(body, createWriteStream(path));
        const written = (await stat(path)).size;
        if (written !== f.size) {
          throw new ModelError('KVF_MODEL_NOT_FOUND', `model ${uri}: ${f.path} came back with ${written} of its ${f.size} bytes; the store changed during the fetch, try again`);
        }
      }
      await rename(staging, dir).catch(async (err: NodeJS.ErrnoException) => {
        // Another process sharing the cache put the same version in place first: use theirs.
        if (err.code !== 'ENOTEMPTY' && err.code !== 'EEXIST') throw err;
      });
    } finally {
      closeStore(store);
      await rm(staging, { recursive: true, force: true });
    }
  }
}

function pinnedMismatch(uri: string, found: string, pinned: string): ModelError {
  return new ModelError(
    'KVF_MODEL_MALFORMED',
    `model ${uri} has fingerprint ${found}, but the batch pins ${pinned}; the model changed since the batch was made — re-upload the pinned model or resubmit the batch`,
  );
}

const isRemote = (uri: string) => uri.startsWith('s3://');

function localPath(uri: string): string {
  return uri.startsWith('file://') ? new URL(uri).pathname : resolve(uri);
}

const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');

async function readRecord(path: string): Promise<{ fingerprint?: string } | null> {
  return readFile(path, 'utf8').then(
    (t) => JSON.parse(t) as { fingerprint?: string },
    () => null,
  );
}

/** Removes the other cached versions of one URI (not other processes' fetches in progress). */
async function removeOtherVersions(home: string, keep: string): Promise<void> {
  const name = keep.slice(home.length + 1);
  for (const e of await readdir(home).catch(() => [] as string[])) {
    if (e === name || e === `${name}.json` || e.includes('.partial-')) continue;
    await rm(join(home, e), { recursive: true, force: true });
  }
}
