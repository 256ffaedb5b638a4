/**
 * The KVF codec: round trips for each codec with their fidelity bounds, half-precision edge
 * cases, and the decoder refusing truncated, corrupted, foreign and newer segments.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { float16Bits, float16Value, HostKvCache, type KvRows } from '@kvfold/fold-core';
import { collect } from '@kvfold/storage';
import { CheckpointError } from './errors.ts';
import { decodeSegment } from './kvf-decode.ts';
import { encodeSegment, segmentBytes } from './kvf-encode.ts';
import type { KvCodec } from './kvf-format.ts';
import { assertSameState, foldStates, LAYOUT8, LAYOUT16, LAYOUT32, randomRows, rng } from './test-kv.ts';

/** Encodes rows [from, to) of a cache (default: all) as one segment. */
async function encode(state: HostKvCache, codec: KvCodec, from = 0, to = state.length): Promise<Uint8Array> {
  const segment = { layout: state.layout, rowFrom: from, rows: state.buffer.read(from, to), nextPosition: state.nextPosition, tokensSeen: state.tokensSeen };
  return collect(encodeSegment(segment, { codec }));
}

/** A cache holding one rows block. */
function cacheOf(layout: HostKvCache['layout'], rows: KvRows): HostKvCache {
  const c = new HostKvCache(layout, rows.rows);
  c.buffer.append(rows);
  return c;
}

/** Feeds bytes to the decoder in small uneven chunks, as a network stream would. */
async function* chunked(bytes: Uint8Array, size = 7): AsyncGenerator<Uint8Array> {
  for (let i = 0; i < bytes.length; i += size) yield bytes.subarray(i, i + size);
}

/** The decoded segment as a cache, at the positions its header records. */
const asState = (s: HostKvCache, back: Awaited<ReturnType<typeof decodeSegment>>): HostKvCache => {
  const c = new HostKvCache(s.layout, back.rows.rows);
  c.buffer.append(back.rows, { nextPosition: back.header.nextPosition, tokensSeen: back.header.tokensSeen });
  return c;
};

const corrupt = (e: unknown, ...mentions: string[]) => {
  assert.ok(e instanceof CheckpointError, String(e));
  assert.equal(e.code, 'KVF_CKPT_CORRUPT', e.message);
  for (const m of mentions) assert.ok(e.message.includes(m), `${e.message} mentions ${m}`);
  return true;
};

describe('half precision', () => {
  test('round to nearest even, overflow, subnormals, specials', () => {
    assert.equal(float16Bits(1), 0x3c00);
    assert.equal(float16Bits(1 + 2 ** -11), 0x3c00, 'tie goes to even');
    assert.equal(float16Bits(1 + 3 * 2 ** -11), 0x3c02, 'tie goes to even (up)');
    assert.equal(float16Bits(65504), 0x7bff);
    assert.equal(float16Bits(65520), 0x7c00, 'rounds up to infinity');
    assert.equal(float16Bits(2 ** -24), 0x0001, 'smallest subnormal');
    assert.equal(float16Bits(2 ** -25), 0x0000, 'half of it ties to zero');
    assert.equal(float16Bits(-(2 ** -14)), 0x8400, 'smallest normal, negative');
    assert.equal(float16Bits(Number.NEGATIVE_INFINITY), 0xfc00);
    assert.ok(Number.isNaN(float16Value(float16Bits(Number.NaN))));
    assert.ok(Object.is(float16Value(float16Bits(-0)), -0));
    for (let bits = 0; bits < 0x10000; bits++) {
      if ((bits & 0x7c00) === 0x7c00 && bits & 0x3ff) continue; // NaNs
      assert.equal(float16Bits(float16Value(bits)), bits, `bits ${bits.toString(16)} survive f16 -> f32 -> f16`);
    }
  });
});

describe('KVF codec', () => {
  const [, , s3] = foldStates(LAYOUT32, 3, 5, 7); // 15 rows
  const state = s3!;
  const stateRows = state.buffer.read(0, state.length);

  test('f32 is bit-exact, for the whole state and for a row range, through a chunked stream', async () => {
    const all = await encode(state, 'f32');
    assert.equal(all.length, segmentBytes(state.layout, 'f32', 15));
    const back = await decodeSegment(chunked(all), 'seg');
    await assertSameState(asState(state, back), state);
    const part = await decodeSegment(chunked(await encode(state, 'f32', 5, 12), 1000), 'seg');
    assert.deepEqual([part.header.rowFrom, part.header.rowTo, part.rows.rows], [5, 12, 7]);
    const l1 = stateRows.layers[1];
    // head 1, row 5 of the state is head 1, row 0 of the segment: [kvHeads, rows, headDim]
    assert.deepEqual(
      [...(part.rows.layers[1]!.value as Float32Array).subarray(7 * 8, 7 * 8 + 8)],
      [...(l1!.value as Float32Array).subarray((15 + 5) * 8, (15 + 5) * 8 + 8)],
    );
  });

  test('f16 is bit-exact for a float16 state', async () => {
    const s16 = foldStates(LAYOUT16, 2, 6, 3)[1]!;
    const back = await decodeSegment(chunked(await encode(s16, 'f16'), 64), 'seg');
    await assertSameState(asState(s16, back), s16);
    const viaF32 = await decodeSegment(chunked(await encode(s16, 'f32')), 'seg');
    await assertSameState(asState(s16, viaF32), s16);
  });

  test('an int8 state is stored as it is held, codes and row scales, bit-exact; another codec is refused', async () => {
    const s8 = foldStates(LAYOUT8, 2, 6, 5)[1]!;
    const bytes = await encode(s8, 'int8');
    // Per layer and K/V: a float32 scale per head row, then a byte per value.
    assert.equal(bytes.length, 80 + 2 * LAYOUT8.layers * (2 * 12 * 4 + 2 * 12 * 8) + 32);
    const back = await decodeSegment(chunked(bytes, 50), 'seg');
    assert.equal(back.header.dtype, 'int8');
    await assertSameState(asState(s8, back), s8);
    await assert.rejects(encode(s8, 'f32'), { code: 'KVF_CKPT_BAD_STATE', message: /an int8 cache is checkpointed with the int8 codec/ });
  });

  test('f16 of a float32 state: exact where representable, else within half an f16 ulp', async () => {
    const rows = randomRows(LAYOUT32, 4, rng(9));
    const k0 = rows.layers[0]?.key as Float32Array;
    k0.set([0.5, -2, 1024, 2 ** -20, 65504]); // representable in f16
    const s = cacheOf(LAYOUT32, rows);
    const back = await decodeSegment(chunked(await encode(s, 'f16')), 'seg');
    const got = back.rows.layers[0]?.key as Float32Array;
    assert.deepEqual([...got.subarray(0, 5)], [0.5, -2, 1024, 2 ** -20, 65504]);
    rows.layers.forEach((l, i) => {
      for (const [orig, dec] of [
        [l.key, back.rows.layers[i]?.key],
        [l.value, back.rows.layers[i]?.value],
      ] as const) {
        (orig as Float32Array).forEach((x, j) => {
          const y = (dec as Float32Array)[j] as number;
          const bound = Math.max(Math.abs(x) * 2 ** -11, 2 ** -25); // relative half-ulp; absolute in subnormals
          assert.ok(Math.abs(x - y) <= bound, `|${x} - ${y}| <= ${bound}`);
        });
      }
    });
  });

  test('int8: every value within half its channel scale (max |x| / 127)', async () => {
    const back = await decodeSegment(chunked(await encode(state, 'int8'), 33), 'seg');
    const { kvHeads, headDim } = LAYOUT32;
    const rows = state.length;
    let worst = 0;
    stateRows.layers.forEach((l, li) => {
      const pairs: [Float32Array, Float32Array][] = [
        [l.key as Float32Array, back.rows.layers[li]?.key as Float32Array],
        [l.value as Float32Array, back.rows.layers[li]?.value as Float32Array],
      ];
      for (const [orig, dec] of pairs) {
        for (let h = 0; h < kvHeads; h++) {
          for (let d = 0; d < headDim; d++) {
            let max = 0;
            for (let r = 0; r < rows; r++) max = Math.max(max, Math.abs(orig[(h * rows + r) * headDim + d] as number));
            const scale = max / 127;
            for (let r = 0; r < rows; r++) {
              const i = (h * rows + r) * headDim + d;
              const err = Math.abs((orig[i] as number) - (dec[i] as number));
              assert.ok(err <= scale / 2 + 1e-6 * max, `layer ${li} head ${h} dim ${d}: error ${err} > ${scale / 2}`);
              worst = Math.max(worst, err / scale);
            }
          }
        }
      }
    });
    assert.ok(worst > 0.1, 'the bound is not vacuous (some values are really rounded)');
    const bytes = await encode(state, 'int8');
    assert.ok(bytes.length < (await encode(state, 'f32')).length / 3, 'int8 is about a quarter of f32');
  });

  test('int8 refuses non-finite values, naming where', async () => {
    const rows = randomRows(LAYOUT32, 2, rng(4));
    (rows.layers[2]?.value as Float32Array)[3] = Number.POSITIVE_INFINITY;
    const s = cacheOf(LAYOUT32, rows);
    await assert.rejects(encode(s, 'int8'), (e: unknown) => e instanceof CheckpointError && e.code === 'KVF_CKPT_BAD_STATE' && /layer 2 V/.test(e.message));
  });

  test('truncation anywhere is refused with the object named', async () => {
    const all = await encode(state, 'f32');
    for (const cut of [0, 5, 40, 80, 500, all.length - 33, all.length - 1]) {
      await assert.rejects(decodeSegment(chunked(all.subarray(0, cut)), 's3://b/doc/seg.kvf'), (e) => corrupt(e, 's3://b/doc/seg.kvf', 'truncated'));
    }
  });

  test('a flipped byte in the payload or trailer fails the sha256; trailing bytes are refused', async () => {
    const all = await encode(state, 'f32');
    for (const at of [200, all.length - 5]) {
      const bad = Uint8Array.from(all);
      bad[at] = (bad[at] as number) ^ 0x01;
      await assert.rejects(decodeSegment(chunked(bad), 'seg-x'), (e) => corrupt(e, 'seg-x', 'sha256 mismatch'));
    }
    const longer = new Uint8Array(all.length + 1);
    longer.set(all);
    await assert.rejects(decodeSegment(chunked(longer), 'seg-y'), (e) => corrupt(e, 'seg-y', 'follow the trailer'));
  });

  test('bad magic, a newer version and a size other than recorded are refused before reading on', async () => {
    const all = await encode(state, 'f32');
    const foreign = Uint8Array.from(all);
    foreign[0] = 0x50;
    await assert.rejects(decodeSegment(chunked(foreign), 'seg-m'), (e) => corrupt(e, 'bad magic'));
    const newer = Uint8Array.from(all);
    newer[4] = 2;
    await assert.rejects(decodeSegment(chunked(newer), 'seg-v'), (e: unknown) => {
      return e instanceof CheckpointError && e.code === 'KVF_CKPT_VERSION' && e.message.includes('seg-v') && e.message.includes('version 2');
    });
    await assert.rejects(decodeSegment(chunked(all), 'seg-s', { expectedBytes: all.length + 4 }), (e) => corrupt(e, 'declares'));
  });
});
