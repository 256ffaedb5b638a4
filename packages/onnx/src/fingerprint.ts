/**
 * Model fingerprints: sha256 over the bytes that decide a model's outputs, so a checkpoint made
 * with one model is never resumed with another. Streams files; weights are never held in memory.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { join } from 'node:path';
import type { ModelFolder } from './model-folder.ts';

/** Bytes one file read moves: big reads keep hashing near sha256's own speed. */
const READ_CHUNK = 1024 * 1024;

/**
 * The hash behind a fingerprint, fed file by file in the folder's order (`ModelFolder.files`):
 * each file's name, a NUL, its bytes, a NUL. For callers that read the files anyway (a push),
 * so that they need no second pass.
 */
export class FolderHash {
  readonly #hash = createHash('sha256');
  #inFile = false;

  /** Starts the next file. */
  file(name: string): void {
    this.#close();
    this.#hash.update(`${name}\0`);
    this.#inFile = true;
  }

  update(chunk: Uint8Array): void {
    this.#hash.update(chunk);
  }

  /** `sha256:<hex>` over every file fed. */
  digest(): string {
    this.#close();
    return `sha256:${this.#hash.digest('hex')}`;
  }

  #close(): void {
    if (this.#inFile) this.#hash.update('\0');
    this.#inFile = false;
  }
}

async function hashFiles(dir: string, files: readonly string[]): Promise<string> {
  const h = new FolderHash();
  for (const f of files) {
    h.file(f);
    for await (const chunk of createReadStream(join(dir, f), { highWaterMark: READ_CHUNK })) h.update(chunk as Buffer);
  }
  return h.digest();
}

export interface ModelFingerprints {
  /** Over config, generation config, tokenizer and weights: the whole model. */
  readonly model: string;
  /** Over tokenizer.json and tokenizer_config.json alone. */
  readonly tokenizer: string;
}

/** Fingerprints are `sha256:<hex>`; the folder's location does not enter them. */
export async function fingerprintModel(folder: ModelFolder): Promise<ModelFingerprints> {
  const tokenizerFiles = folder.files.filter((f) => f.startsWith('tokenizer'));
  const [model, tokenizer] = await Promise.all([hashFiles(folder.dir, folder.files), hashFiles(folder.dir, tokenizerFiles)]);
  return { model, tokenizer };
}
