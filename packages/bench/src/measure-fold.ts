/**
 * One measured fold: N token ids at one chunk size, with wall time, tokens/s and the
 * process's peak RSS. Benchmarks run it in a fresh process per configuration.
 */
import { foldAll } from '@kvfold/fold-core';
import type { LoadedModel, TextTokenizer } from '@kvfold/onnx';
import { benchIds } from './engine/measure-engine.ts';

export interface FoldMeasurement {
  readonly tokens: number;
  readonly chunkSize: number;
  readonly steps: number;
  readonly foldMs: number;
  readonly tokensPerSecond: number;
  readonly peakRssMiB: number;
  readonly kvBytes: number;
}

/**
 * Deterministic text of at least `minTokens` tokens under `tokenizer`, made of the model's own
 * vocabulary (any tokenizer: byte-level, word-level, SentencePiece), for benchmarks that need a
 * document file rather than token ids.
 */
export function vocabularyText(tokenizer: TextTokenizer, vocabSize: number, minTokens: number): string {
  const words: number[] = [];
  for (let id = 0; id < vocabSize; id++) {
    const t = tokenizer.decode([id]);
    if (t.trim() !== '' && !t.includes('\uFFFD')) words.push(id);
  }
  if (!words.length) throw new RangeError('the tokenizer decodes no token to text');
  let n = minTokens;
  for (;;) {
    const ids = Array.from({ length: n }, (_, i) => words[(i * 7919 + 13) % words.length] as number);
    const text = tokenizer.decode(ids);
    if (tokenizer.encodeDocument(text).length >= minTokens) return text;
    n *= 2;
  }
}

export async function measureFold(model: LoadedModel, tokens: number, chunkSize: number): Promise<FoldMeasurement> {
  const ids = benchIds(tokens, model.decoder.layout.vocabSize);
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
