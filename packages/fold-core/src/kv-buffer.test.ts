/** The in-place cache buffer: layout, growth, rewind, eviction, and what each operation copies. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { KvCacheError } from './errors.ts';
import { HostKvCache } from './host-kv-cache.ts';
import { KvBuffer } from './kv-buffer.ts';
import { type KvLayout, type KvRows, kvRowBytes } from './kv-layout.ts';
import { ropeFrequencies, rotateKeyRows } from './rope.ts';

const layout: KvLayout = { layers: 2, kvHeads: 3, headDim: 4, dtype: 'float32', maxPositions: 1024 };

/** Rows whose every element encodes (layer, k|v, head, absolute row, dim). */
function rowsFrom(start: number, n: number): KvRows {
  const tag = (l: number, kv: number) => {
    const a = new Float32Array(layout.kvHeads * n * layout.headDim);
    for (let h = 0; h < layout.kvHeads; h++)
      for (let r = 0; r < n; r++)
        for (let d = 0; d < layout.headDim; d++) a[(h * n + r) * layout.headDim + d] = l * 1e6 + kv * 1e5 + h * 1e4 + (start + r) * 10 + d;
    return a;
  };
  return { rows: n, layers: [0, 1].map((l) => ({ key: tag(l, 0), value: tag(l, 1) })) };
}

test('appending writes each head as [kvHeads, capacity, headDim] and reads back what was written', () => {
  const b = new KvBuffer(layout, 10);
  b.append(rowsFrom(0, 5));
  b.append(rowsFrom(5, 2));
  assert.deepEqual([b.length, b.nextPosition, b.tokensSeen, b.capacity], [7, 7, 7, 10]);
  // head 2, row 6, dim 3 of layer 1's keys, at stride capacity
  assert.equal(b.layer(1).key[(2 * 10 + 6) * 4 + 3], 1e6 + 2e4 + 63);
  assert.deepEqual(b.read(5, 7), rowsFrom(5, 2));
  assert.deepEqual(b.read(0, 7), { rows: 7, layers: rowsFrom(0, 7).layers });
  assert.equal(b.bytes, 7 * kvRowBytes(layout));
  assert.equal(kvRowBytes(layout), 2 * 2 * 3 * 4 * 4);
});

test('rows-first blocks (packed heads) land in the same place as heads-first ones', () => {
  const a = new KvBuffer(layout, 4);
  const b = new KvBuffer(layout, 4);
  const rows = rowsFrom(0, 3);
  a.append(rows);
  const { kvHeads, headDim } = layout;
  const packed = (x: Float32Array) => {
    const out = new Float32Array(x.length);
    for (let h = 0; h < kvHeads; h++) for (let r = 0; r < 3; r++) out.set(x.subarray((h * 3 + r) * headDim, (h * 3 + r + 1) * headDim), (r * kvHeads + h) * headDim);
    return out;
  };
  b.ensureRoom(3);
  for (const [i, l] of rows.layers.entries()) b.writeLayer(i, packed(l.key as Float32Array), packed(l.value as Float32Array), 3, 'rows-first');
  b.advance(3);
  assert.deepEqual(b.read(0, 3), a.read(0, 3));
});

test('an append past the capacity doubles it, copying the held rows once; reserve sizes exactly', () => {
  const b = new KvBuffer(layout, 4);
  b.append(rowsFrom(0, 3));
  const copiedBefore = b.copiedBytes;
  b.append(rowsFrom(3, 2));
  assert.equal(b.capacity, 8);
  assert.equal(b.generation, 2);
  assert.equal(b.copiedBytes - copiedBefore, 3 * kvRowBytes(layout) + 2 * kvRowBytes(layout), 'the 3 held rows moved, the 2 new ones were written');
  assert.deepEqual(b.read(0, 5), { rows: 5, layers: rowsFrom(0, 5).layers });
  b.reserve(20);
  assert.equal(b.capacity, 20);
  b.reserve(10);
  assert.equal(b.capacity, 20, 'never shrinks');
});

test('what an append copies is its own rows, whatever the cache holds', () => {
  const b = new KvBuffer(layout, 4096);
  const costs: number[] = [];
  for (let t = 0; t < 4000; t += 8) {
    const before = b.copiedBytes;
    b.append(rowsFrom(t, 8));
    costs.push(b.copiedBytes - before);
  }
  assert.deepEqual(new Set(costs), new Set([8 * kvRowBytes(layout)]));
});

test('rewind drops rows after the mark without copying; a rewind past the rows held is refused', async () => {
  const c = new HostKvCache(layout, 16);
  await c.append(rowsFrom(0, 6));
  const m = c.mark();
  await c.append(rowsFrom(6, 4));
  const copied = c.buffer.copiedBytes;
  await c.rewind(m);
  assert.equal(c.buffer.copiedBytes, copied);
  assert.deepEqual([c.length, c.nextPosition, c.tokensSeen], [6, 6, 6]);
  await c.append(rowsFrom(100, 1));
  assert.deepEqual(await c.read(6, 7), rowsFrom(100, 1), 'the next append overwrites the dropped rows');
  await assert.rejects(c.rewind({ length: 9, nextPosition: 9, tokensSeen: 9 }), (e: unknown) => e instanceof KvCacheError && e.code === 'KVF_KV_REWIND' && /cannot rewind a cache of 7 rows to 9 rows/.test(e.message));
  await assert.rejects(c.rewind({ length: -1, nextPosition: 0, tokensSeen: 0 }), /cannot rewind/);
  await c.release();
  await assert.rejects(c.read(0, 1), (e: unknown) => e instanceof KvCacheError && e.code === 'KVF_KV_RELEASED');
});

test('eviction moves later rows down in place and turns their keys back by the rows evicted', () => {
  const one: KvLayout = { ...layout, layers: 1, kvHeads: 2, headDim: 8 };
  const invFreq = ropeFrequencies(10000, 8);
  const rows = (start: number, n: number): KvRows => {
    const key = new Float32Array(2 * n * 8).map((_, i) => Math.sin(i * 0.37 + start));
    const value = new Float32Array(2 * n * 8).map((_, i) => start + Math.floor((i % (n * 8)) / 8));
    return { rows: n, layers: [{ key, value }] };
  };
  const b = new KvBuffer(one, 12);
  const all = rows(0, 10);
  b.append(all);
  b.evict(2, 5, invFreq); // keeps rows 0, 1 and 7, 8, 9
  assert.deepEqual([b.length, b.nextPosition, b.tokensSeen], [5, 5, 10]);
  const got = b.read(0, 5);
  const want = all.layers[0]?.key.slice() as Float32Array;
  rotateKeyRows(want, 2, 10, 8, 7, 10, -5, invFreq);
  for (let h = 0; h < 2; h++)
    for (const [dst, src] of [
      [0, 0],
      [1, 1],
      [2, 7],
      [3, 8],
      [4, 9],
    ] as const) {
      for (let d = 0; d < 8; d++) {
        assert.ok(Math.abs((got.layers[0]?.key[(h * 5 + dst) * 8 + d] as number) - (want[(h * 10 + src) * 8 + d] as number)) < 1e-6);
        assert.equal(got.layers[0]?.value[(h * 5 + dst) * 8 + d], src);
      }
    }
  assert.throws(() => b.evict(3, 4, invFreq), /cannot evict rows \[3, 7\) from a cache of 5 rows/);
});

test('an allocation the guard refuses, or one the runtime cannot make, fails naming the rows and bytes', () => {
  const guard = (bytes: number, rows: number) => {
    if (bytes > 1 << 20) throw new KvCacheError('KVF_KV_NO_MEMORY', `refused ${rows} rows (${bytes} bytes)`);
  };
  const b = new KvBuffer(layout, 100, { guard });
  assert.throws(() => b.reserve(100_000), (e: unknown) => e instanceof KvCacheError && /refused 100000 rows \(19200000 bytes\)/.test(e.message));
  assert.equal(b.capacity, 100, 'a refused growth leaves the cache as it was');
  const huge: KvLayout = { layers: 1, kvHeads: 1, headDim: 1, dtype: 'float32', maxPositions: 1 };
  assert.throws(
    () => new KvBuffer(huge, 2 ** 40),
    (e: unknown) => e instanceof KvCacheError && e.code === 'KVF_KV_NO_MEMORY' && /cannot allocate a KV cache of 1099511627776 rows \(8\.0 TiB, 8 B a row\)/.test(e.message),
  );
});
