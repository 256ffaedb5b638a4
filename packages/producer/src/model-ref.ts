/**
 * checkModelRef(): before a batch is enqueued, the model it names must be there — a folder on this
 * host, or a folder pushed to an object store — and hold a decoder in the optimum export layout
 * (config.json, tokenizer.json, onnx/model.onnx or a single onnx/model*.onnx, as @kvfold/onnx's
 * readModelFolder accepts), so that a typo fails the request instead of every document. It looks
 * at the listing only (no file is read, no session created): the same look a worker's model cache
 * takes before it fetches.
 */
import { stat } from 'node:fs/promises';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { BatchSpec } from '@kvfold/contract';
import { FsObjectStore, type ObjectStore, type OpenStoreOptions, openStore } from '@kvfold/storage';
import { ProducerError, ProducerErrorCode } from './errors.ts';

/** What readModelFolder needs, as the layout names it. */
const LAYOUT = 'config.json, tokenizer.json, tokenizer_config.json, onnx/model.onnx';
/** The manifest `kvfold models push` writes beside a pushed model's files (not part of the model). */
const PUSH_MANIFEST = 'kvfold-model.json';

/**
 * Throws `KVF_ENQUEUE_MODEL` naming the model and what to do when `ref` is not a model folder
 * (local path or `file://` on this host, or an `s3://` prefix). Store errors (unreachable, refused
 * credentials) are thrown as they are.
 */
export async function checkModelRef(ref: string | BatchSpec['model'], options: OpenStoreOptions = {}): Promise<void> {
  const uri = typeof ref === 'string' ? ref : ref.uri;
  const remote = /^[a-z][a-z0-9+.-]*:\/\//i.test(uri) && !uri.startsWith('file://');
  let store: ObjectStore;
  if (remote) {
    store = openStore(uri.endsWith('/') ? uri : `${uri}/`, options);
  } else {
    const dir = uri.startsWith('file://') ? fileURLToPath(uri) : resolve(options.cwd ?? process.cwd(), uri);
    const info = await stat(dir).catch(() => null);
    if (!info) {
      throw modelError(uri, `folder ${dir} does not exist here; build or copy the model there (kvfold models build tiny-llama --out ${dir}), or push it to the store (kvfold models push) and give its URI`);
    }
    if (!info.isDirectory()) throw modelError(uri, `is a file (${dir}), not a model folder; give a model folder, or push one to the store (kvfold models push) and give its URI`);
    store = new FsObjectStore(dir);
  }
  const keys = new Set<string>();
  try {
    for await (const o of store.list('')) keys.add(o.key);
  } finally {
    (store as { destroy?: () => void }).destroy?.();
  }
  keys.delete(PUSH_MANIFEST);
  if (keys.size === 0) {
    throw modelError(uri, remote ? 'holds no objects; push the model folder there first (kvfold models push <dir> <uri>)' : `is an empty folder (expected ${LAYOUT})`);
  }
  const missing = ['config.json', 'tokenizer.json'].filter((k) => !keys.has(k));
  const decoders = [...keys].filter((k) => /^onnx\/model[^/]*\.onnx$/.test(k));
  if (!keys.has('onnx/model.onnx') && decoders.length !== 1) missing.push(decoders.length ? `onnx/model.onnx (it has ${decoders.join(', ')}; keep one)` : 'onnx/model.onnx');
  if (missing.length) throw modelError(uri, `has no ${missing.join(', ')} (expected the optimum export layout: ${LAYOUT}); point --model at a model folder`);
}

function modelError(uri: string, what: string): ProducerError {
  return new ProducerError(ProducerErrorCode.EnqueueModel, `model ${uri} ${what}; nothing was enqueued`);
}
