/**
 * One measured fold: N tokens of synthetic text at one chunk size, with wall time, tokens/s and the
 * process's peak RSS. Benchmarks run it in a fresh process per configuration.
 */
import { foldAll } from '@kvfold/fold-core';
import type { LoadedModel } from '@kvfold/onnx';

export interface FoldMeasurement {
  readonly tokens: number;
  readonly chunkSize: number;
  readonly steps: number;
  readonly foldMs: number;
  readonly tokensPerSecond: number;
  readonly peakRssMiB: number;
  readonly kvBytes: number;
}

/** Deterministic prose-like text of at least `minChars` characters. */
export function syntheticText(minChars: number): string {
  const words = ['the', 'fold', 'reads', 'each', 'chunk', 'of', 'a', 'long', 'document', 'while', 'cache', 'keys', 'and', 'values', 'grow', 'with', 'every', 'step', 'model', 'frozen'];
  const parts: string[] = [];
  let length = 0;
  let x = 12345;
  while (length < minChars) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    const w = words[x % words.length] as string;
    parts.push(w);
    length += w.length + 1;
  }
  return parts.join(' ');
}

export async function measureFold(model: LoadedModel, tokens: number, chunkSize: number): Promise<FoldMeasurement> {
  let ids = model.tokenizer.encodeDocument(syntheticText(tokens * 4));
  while (ids.length < tokens) ids = model.tokenizer.encodeDocument(syntheticText(tokens * 8));
  ids = ids.slice(0, tokens);
  const cache = await model.decoder.createCache({ capacity: tokens });
  const started = performance.now();
  const { steps } = await foldAll(model.decoder, cache, ids, { chunkSize });
  const foldMs = performance.now() - started;
  const kvBytes = cache.bytes;
  await cache.release();
  return {
    tokens,
    chunkSize,
    steps: steps.length,
    foldMs,
    tokensPerSecond: (tokens / foldMs) * 1000,
    peakRssMiB: process.resourceUsage().maxRSS / 1024,
    kvBytes,
  };
}
