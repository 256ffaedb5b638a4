/**
 * Test support: a pure positional decoder over HostKvCache. Its K rows record the position each
 * token was given and its V rows the token; logit v of token i is 1 for v == (context seen by
 * token i) % vocab. So the fold's bookkeeping (positions continue, the cache grows by each chunk,
 * resume picks up where it stopped, questions rewind) is checked without a runtime. The same
 * properties are checked on real ONNX models in @kvfold/onnx.
 */
import { HostKvCache } from './host-kv-cache.ts';
import type { DecoderModel, ModelLayout, StepInput, StepOutput } from './model.ts';

export const POSITIONAL_VOCAB = 8;

export function positionalModel(vocab = POSITIONAL_VOCAB): DecoderModel & { readonly calls: { tokens: number; past: number }[] } {
  const layout: ModelLayout = { layers: 1, kvHeads: 1, headDim: 2, dtype: 'float32', maxPositions: 1 << 20, vocabSize: vocab };
  const calls: { tokens: number; past: number }[] = [];
  return {
    layout,
    calls,
    async createCache({ capacity }) {
      return new HostKvCache(layout, capacity);
    },
    async step({ tokens, cache, logits }: StepInput): Promise<StepOutput> {
      if (!(cache instanceof HostKvCache)) throw new TypeError('the positional model steps its own caches only');
      const n = tokens.length;
      const past = cache.length;
      calls.push({ tokens: n, past });
      const all = new Float32Array(n * vocab);
      for (let i = 0; i < n; i++) all[i * vocab + ((past + i + 1) % vocab)] = 1;
      const key = new Float32Array(n * 2);
      const value = new Float32Array(n * 2);
      for (let i = 0; i < n; i++) {
        key[i * 2] = cache.nextPosition + i;
        value[i * 2] = tokens[i] as number;
      }
      const before = cache.buffer.copiedBytes;
      await cache.append({ rows: n, layers: [{ key, value }] });
      const out = logits === 'all' ? all : logits === 'last' ? all.slice((n - 1) * vocab) : new Float32Array(0);
      return { logits: out, copiedBytes: cache.buffer.copiedBytes - before };
    },
  };
}
