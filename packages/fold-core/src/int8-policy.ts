/**
 * int8 KV: every row is kept, and each full group of `groupRows` consecutive rows is rounded
 * through int8 (int8.ts: per-channel symmetric scales over the group) in place once it fills. The
 * newest rows, fewer than a group, stay exact until their group fills, so short chunks are never
 * quantized over a handful of rows. Attention then reads exactly the values an int8 cache would
 * give back: the policy measures int8's fidelity (NIAH, drift).
 *
 * It does not save memory: ONNX Runtime's attention reads float32, so the cache stays float32.
 * Storage shrinks where bytes leave memory: the checkpoint codec `int8`.
 */
import type { KvPolicy } from './policy.ts';

/** Rows per quantization group: scales amortise to 1/32 byte per element at 128 rows. */
export const DEFAULT_INT8_GROUP_ROWS = 128;

export function int8Policy(groupRows = DEFAULT_INT8_GROUP_ROWS): KvPolicy {
  if (!Number.isInteger(groupRows) || groupRows < 1) throw new RangeError(`int8 group rows must be an integer >= 1, got ${groupRows}`);
  return {
    name: 'full+int8',
    appendOnly: true,
    rows: (tokens, _chunkSize, extra) => tokens + extra,
    async afterStep(cache, added) {
      if (cache.layout.dtype !== 'float32') throw new RangeError('the int8 KV policy rounds float32 caches only');
      const before = cache.length - added;
      const from = Math.floor(before / groupRows) * groupRows;
      const to = Math.floor(cache.length / groupRows) * groupRows;
      for (let g = from; g < to; g += groupRows) await cache.quantize(g, g + groupRows);
    },
  };
}
