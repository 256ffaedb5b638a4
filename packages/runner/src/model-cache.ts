/**
 * Models as artifacts: a worker gets a model by reference — a local folder, or a folder in an
 * object store — fetches it once into a local cache, verifies its fingerprint when the reference
 * names one, and keeps one loaded session per model.
 */
import { createHash } from 'node:crypto';
import { mkdir, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { type Device, type LoadedModel, loadModel, ModelError } from '@kvfold/onnx';
import { type ObjectStore, type OpenStoreOptions, openStore } from '@kvfold/storage';

/** A model reference as batch specs carry it: a URI or path, optionally pinned to a fingerprint. */
export type ModelRefValue = string | { readonly uri: string; readonly fingerprint?: string | undefined };

export interface ModelCacheOptions {
  /** Where fetched model folders are kept. */
  readonly cacheDir: string;
  readonly device?: Device;
  readonly threads?: number;
  /** Opens `s3://` model URIs (endpoint, credentials). */
  readonly storeOptions?: OpenStoreOptions;
}

export class ModelCache {
  private readonly loaded = new Map<string, Promise<LoadedModel>>();

  constructor(private readonly options: ModelCacheOptions) {}

  /** The loaded model for a reference, fetching and verifying it on first use. */
  get(ref: ModelRefValue): Promise<LoadedModel> {
    const { uri, fingerprint } = typeof ref === 'string' ? { uri: ref, fingerprint: undefined } : ref;
    const key = `${uri}\0${fingerprint ?? ''}`;
    let p = this.loaded.get(key);
    if (!p) {
      p = this.load(uri, fingerprint);
      this.loaded.set(key, p);
      p.catch(() => this.loaded.delete(key));
    }
    return p;
  }

  private async load(uri: string, fingerprint: string | undefined): Promise<LoadedModel> {
    const dir = uri.startsWith('s3://') ? await this.fetch(uri) : localPath(uri);
    const model = await loadModel(dir, {
      ...(this.options.device ? { device: this.options.device } : {}),
      ...(this.options.threads ? { threads: this.options.threads } : {}),
    });
    if (fingerprint && model.fingerprints.model !== fingerprint) {
      await model.close();
      throw new ModelError(
        'KVF_MODEL_MALFORMED',
        `model ${uri} has fingerprint ${model.fingerprints.model}, but the batch pins ${fingerprint}; the model changed since the batch was made — re-upload the pinned model or resubmit the batch`,
      );
    }
    return model;
  }

  /** Copies every object under the URI's prefix into the cache (once; atomically by rename). */
  private async fetch(uri: string): Promise<string> {
    const dir = join(this.options.cacheDir, createHash('sha256').update(uri).digest('hex').slice(0, 32));
    if (await stat(join(dir, 'config.json')).catch(() => null)) return dir;
    const store: ObjectStore = openStore(uri.endsWith('/') ? uri : `${uri}/`, this.options.storeOptions ?? {});
    const staging = `${dir}.partial-${process.pid}`;
    await rm(staging, { recursive: true, force: true });
    let files = 0;
    for await (const o of store.list('')) {
      const path = join(staging, o.key);
      await mkdir(dirname(path), { recursive: true });
      await writeFile(path, await store.getBytes(o.key));
      files++;
    }
    if (files === 0) throw new ModelError('KVF_MODEL_NOT_FOUND', `model ${uri} holds no objects; upload the model folder there (kvfold models push)`);
    await rm(dir, { recursive: true, force: true });
    await rename(staging, dir);
    return dir;
  }

  async close(): Promise<void> {
    const all = await Promise.allSettled(this.loaded.values());
    this.loaded.clear();
    await Promise.all(all.map((r) => (r.status === 'fulfilled' ? r.value.close() : undefined)));
  }
}

function localPath(uri: string): string {
  return uri.startsWith('file://') ? new URL(uri).pathname : resolve(uri);
}

/**
 * Uploads a model folder to a store location, so workers can load it by URI. Every file of the
 * folder goes up under the URI's prefix; the config goes last, since a fetch treats a folder
 * without it as absent.
 */
export async function pushModel(dir: string, uri: string, storeOptions: OpenStoreOptions = {}): Promise<{ files: number; bytes: number }> {
  const root = resolve(dir);
  const files: string[] = [];
  const walk = async (rel: string): Promise<void> => {
    for (const e of await readdir(join(root, rel), { withFileTypes: true })) {
      const path = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) await walk(path);
      else if (e.isFile()) files.push(path);
    }
  };
  await walk('');
  if (!files.includes('config.json')) throw new ModelError('KVF_MODEL_NOT_FOUND', `${root} has no config.json: not a model folder`);
  const store = openStore(uri.endsWith('/') ? uri : `${uri}/`, storeOptions);
  let bytes = 0;
  for (const f of [...files.filter((f) => f !== 'config.json').sort(), 'config.json']) {
    const body = await readFile(join(root, f));
    await store.put(f, body);
    bytes += body.length;
  }
  return { files: files.length, bytes };
}
