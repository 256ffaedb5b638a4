/** Test fixtures: model-zoo folders built into a temporary directory, removed when the process exits; fold helpers. */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type DecoderModel, foldAll, type FoldOptions, type KvCache, type KvRows } from '@kvfold/fold-core';
import { type LlamaSpec, tinyLlamaSpec, type TinyLlamaOptions, type WriteModelOptions, writeModelFolder } from '@kvfold/model-zoo';

const root = mkdtempSync(join(tmpdir(), 'kvfold-onnx-test-'));
process.on('exit', () => rmSync(root, { recursive: true, force: true }));

/** Builds tiny-llama (with options) into a fresh folder and returns its path. */
export async function tinyLlamaFolder(name: string, spec: TinyLlamaOptions = {}, write: WriteModelOptions = {}): Promise<string> {
  return modelFolder(name, tinyLlamaSpec(spec), write);
}

/** Builds any spec into a fresh folder and returns its path. */
export async function modelFolder(name: string, spec: LlamaSpec, write: WriteModelOptions = {}): Promise<string> {
  const dir = join(root, name);
  await writeModelFolder(spec, dir, write);
  return dir;
}

export const scratchDir = root;

/** Folds `tokens` into a fresh cache; returns every position's logits concatenated and the cache. */
export async function foldLogits(model: DecoderModel, tokens: Int32Array, chunkSize: number, options: Omit<FoldOptions, 'chunkSize' | 'keepLogits'> = {}) {
  const cache = await model.createCache({ capacity: tokens.length });
  const r = await foldAll(model, cache, tokens, { ...options, chunkSize, keepLogits: true });
  const logits = new Float32Array(r.steps.reduce((n, s) => n + (s.logits as Float32Array).length, 0));
  let at = 0;
  for (const s of r.steps) {
    logits.set(s.logits as Float32Array, at);
    at += (s.logits as Float32Array).length;
  }
  return { logits, cache, steps: r.steps };
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs((a[i] as number) - (b[i] as number)));
  return m;
}

/** Every row of a cache. */
export function allRows(cache: KvCache): Promise<KvRows> {
  return cache.read(0, cache.length);
}

/** The largest difference between two caches' rows, over every layer's K and V. */
export async function cacheDiff(a: KvCache, b: KvCache): Promise<number> {
  const [x, y] = [await allRows(a), await allRows(b)];
  assert.equal(x.rows, y.rows);
  let m = 0;
  x.layers.forEach((l, i) => {
    m = Math.max(m, maxAbsDiff(l.key, y.layers[i]?.key as ArrayLike<number>), maxAbsDiff(l.value, y.layers[i]?.value as ArrayLike<number>));
  });
  return m;
}
