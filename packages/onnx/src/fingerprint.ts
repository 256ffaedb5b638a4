/**
 * Model fingerprints: sha256 over the bytes that decide a model's outputs, so a checkpoint made
 * with one model is never resumed with another. Streams files; weights are never held in memory.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { join } from 'node:path';
import type { ModelFolder } from './model-folder.ts';

async function hashFiles(dir: string, files: readonly string[]): Promise<string> {
  const h = createHash('sha256');
  for (const f of files) {
    h.update(`${f}\0`);
    for await (const chunk of createReadStream(join(dir, f))) h.update(chunk as Buffer);
    h.update('\0');
  }
  return h.digest('hex');
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
  return { model: `sha256:${model}`, tokenizer: `sha256:${tokenizer}` };
}
