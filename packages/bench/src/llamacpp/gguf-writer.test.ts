/**
 * The GGUF writer's files read back by a small reader written from ggml's spec: header, metadata
 * with the types llama.cpp checks, tensor infos in llama.cpp's names and ggml's dims, offsets at the
 * alignment, and the data itself: F32 exact (Q and K rows in the interleaved RoPE layout), Q8_0 and
 * Q4_0 blocks decoding to the checkpoint's values within half a step.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { float16Value } from '@kvfold/fold-core';
import { openCheckpoint, writeCheckpoint } from '@kvfold/model-zoo';
import { randomCheckpointContents } from '../precision/shapes.ts';
import { BLOCK_BYTES, encodeQ4_0, encodeQ8_0, type GgmlType } from './ggml-blocks.ts';
import { GGUF_ALIGNMENT, writeGguf } from './gguf-file.ts';
import { permuteRopeRows, writeLlamaGguf } from './gguf-writer.ts';
import { smallLlama } from './test-support.ts';

const config = smallLlama({ vocab_size: 300, hidden_size: 64, intermediate_size: 96 }, { rope_theta: 500000 });

const root = mkdtempSync(join(tmpdir(), 'kvfold-gguf-test-'));
const checkpoint = join(root, 'checkpoint');
const source = new Map<string, Float32Array>();
before(() => {
  writeCheckpoint(randomCheckpointContents(config, 7), checkpoint, { family: 'llama', dtype: 'F32' });
  const c = openCheckpoint(checkpoint);
  for (const [name, t] of c.tensors) source.set(name, t.file.readFloat32(name));
  c.close();
});
after(() => rmSync(root, { recursive: true, force: true }));

// ---- a GGUF reader, from the spec ----

type Value = number | boolean | string | Value[];
interface TensorInfo {
  name: string;
  dims: number[];
  type: number;
  offset: number;
}
interface Parsed {
  version: number;
  metadata: Map<string, { type: number; value: Value }>;
  tensors: TensorInfo[];
  dataOffset: number;
  bytes: Buffer;
}

function readGguf(path: string): Parsed {
  const b = readFileSync(path);
  let at = 0;
  /** Reads `n` bytes' worth with `read` at the cursor and moves past them. */
  const take = <T>(n: number, read: (offset: number) => T): T => {
    const v = read(at);
    at += n;
    return v;
  };
  const u32 = () => take(4, (o) => b.readUInt32LE(o));
  const u64 = () => take(8, (o) => Number(b.readBigUInt64LE(o)));
  const str = () => {
    const n = u64();
    return take(n, (o) => b.toString('utf8', o, o + n));
  };
  const value = (type: number): Value => {
    switch (type) {
      case 4:
        return u32();
      case 5:
        return take(4, (o) => b.readInt32LE(o));
      case 6:
        return take(4, (o) => b.readFloatLE(o));
      case 7:
        return take(1, (o) => b[o] === 1);
      case 8:
        return str();
      case 9: {
        const element = u32();
        return Array.from({ length: u64() }, () => value(element));
      }
      default:
        throw new Error(`value type ${type} is not one the writer uses`);
    }
  };
  assert.equal(b.toString('ascii', 0, 4), 'GGUF');
  at = 4;
  const version = u32();
  const [tensorCount, kvCount] = [u64(), u64()];
  const metadata = new Map<string, { type: number; value: Value }>();
  for (let i = 0; i < kvCount; i++) {
    const key = str();
    const type = u32();
    metadata.set(key, { type, value: value(type) });
  }
  const tensors: TensorInfo[] = [];
  for (let i = 0; i < tensorCount; i++) {
    const name = str();
    const dims = Array.from({ length: u32() }, u64);
    tensors.push({ name, dims, type: u32(), offset: u64() });
  }
  const alignment = (metadata.get('general.alignment')?.value as number | undefined) ?? 32;
  return { version, metadata, tensors, dataOffset: Math.ceil(at / alignment) * alignment, bytes: b };
}

/** Decodes a tensor's data as float32 (F32, Q8_0 and Q4_0), and each value's scale where quantized. */
function decode(g: Parsed, t: TensorInfo): { values: Float32Array; scales: Float32Array } {
  const n = t.dims.reduce((a, b) => a * b, 1);
  const at = g.dataOffset + t.offset;
  const values = new Float32Array(n);
  const scales = new Float32Array(n);
  if (t.type === 0) {
    for (let i = 0; i < n; i++) values[i] = g.bytes.readFloatLE(at + 4 * i);
    return { values, scales };
  }
  const q8 = t.type === 8;
  const blockBytes = q8 ? 34 : 18;
  for (let blk = 0; blk < n / 32; blk++) {
    const o = at + blk * blockBytes;
    const d = float16Value(g.bytes.readUInt16LE(o));
    for (let j = 0; j < 32; j++) {
      const code = q8 ? g.bytes.readInt8(o + 2 + j) : ((g.bytes[o + 2 + (j % 16)] as number) >> (j < 16 ? 0 : 4)) & 15;
      values[blk * 32 + j] = (q8 ? code : code - 8) * d;
      scales[blk * 32 + j] = d;
    }
  }
  return { values, scales };
}

const written = (type: GgmlType) => {
  const path = join(root, `model-${type}.gguf`);
  const result = writeLlamaGguf(checkpoint, path, type);
  return { result, g: readGguf(path) };
};

// ---- tests ----

test('F32: a GGUF v3 header with the llama metadata at the types llama.cpp reads, and a stand-in vocabulary of vocab_size ids', () => {
  const { result, g } = written('F32');
  assert.equal(g.version, 3);
  const meta = (k: string) => g.metadata.get(k);
  const expect: [string, number, Value][] = [
    ['general.architecture', 8, 'llama'],
    ['general.file_type', 4, 0],
    ['llama.context_length', 4, 4096],
    ['llama.embedding_length', 4, 64],
    ['llama.block_count', 4, 2],
    ['llama.feed_forward_length', 4, 96],
    ['llama.attention.head_count', 4, 4],
    ['llama.attention.head_count_kv', 4, 2],
    ['llama.rope.dimension_count', 4, 16],
    ['llama.rope.freq_base', 6, 500000],
    ['llama.vocab_size', 4, 300],
    ['tokenizer.ggml.model', 8, 'llama'],
    ['tokenizer.ggml.bos_token_id', 4, 256],
    ['tokenizer.ggml.eos_token_id', 4, 257],
  ];
  for (const [key, type, value] of expect) assert.deepEqual(meta(key), { type, value }, key);
  assert.ok(Math.abs((meta('llama.attention.layer_norm_rms_epsilon')?.value as number) - 1e-5) < 1e-12);
  assert.equal(meta('general.quantization_version'), undefined, 'no quantized tensor, no quantization version');
  const tokens = meta('tokenizer.ggml.tokens')?.value as string[];
  const types = meta('tokenizer.ggml.token_type')?.value as number[];
  assert.equal(tokens.length, 300);
  assert.equal(new Set(tokens).size, 300, 'llama.cpp refuses a duplicate token');
  assert.equal((meta('tokenizer.ggml.scores')?.value as number[] | undefined)?.length, 300);
  assert.deepEqual([tokens[10], types[10], tokens[256], types[256], tokens[257], tokens[258]], ['<0x0A>', 6, '<s>', 3, '</s>', '<kvfold_258>']);

  // 1 embedding + 9 per layer + output_norm + output
  assert.equal(g.tensors.length, 1 + 9 * 2 + 2);
  assert.equal(result.tensors, g.tensors.length);
  const info = (name: string) => g.tensors.find((t) => t.name === name) as TensorInfo;
  assert.deepEqual(info('token_embd.weight').dims, [64, 300]);
  assert.deepEqual(info('blk.1.attn_q.weight').dims, [64, 64]);
  assert.deepEqual(info('blk.1.attn_k.weight').dims, [64, 32]);
  assert.deepEqual(info('blk.0.ffn_down.weight').dims, [96, 64]);
  assert.deepEqual(info('output.weight').dims, [64, 300]);
  assert.deepEqual(info('output_norm.weight').dims, [64]);
  assert.equal(g.dataOffset % GGUF_ALIGNMENT, 0);
  let end = 0;
  for (const t of g.tensors) {
    assert.equal(t.type, 0);
    assert.equal(t.offset % GGUF_ALIGNMENT, 0, `${t.name} is aligned`);
    assert.equal(t.offset, Math.ceil(end / GGUF_ALIGNMENT) * GGUF_ALIGNMENT, `${t.name} follows the previous tensor`);
    end = t.offset + t.dims.reduce((a, b) => a * b, 1) * 4;
  }
  assert.equal(g.bytes.length, g.dataOffset + Math.ceil(end / GGUF_ALIGNMENT) * GGUF_ALIGNMENT);

  assert.deepEqual(decode(g, info('token_embd.weight')).values, source.get('model.embed_tokens.weight'));
  assert.deepEqual(decode(g, info('blk.1.ffn_norm.weight')).values, source.get('model.layers.1.post_attention_layernorm.weight'));
  assert.deepEqual(decode(g, info('blk.0.attn_v.weight')).values, source.get('model.layers.0.self_attn.v_proj.weight'));
  // Q and K: head h's row 2j + s is the checkpoint's row s·8 + j (head_dim 16), each of 64 columns.
  for (const [name, hf] of [
    ['blk.1.attn_q.weight', 'model.layers.1.self_attn.q_proj.weight'],
    ['blk.1.attn_k.weight', 'model.layers.1.self_attn.k_proj.weight'],
  ] as const) {
    const got = decode(g, info(name)).values;
    const want = source.get(hf) as Float32Array;
    for (let row = 0; row < got.length / 64; row++) {
      const [h, r] = [Math.floor(row / 16), row % 16];
      const from = h * 16 + (r % 2) * 8 + Math.floor(r / 2);
      assert.deepEqual(got.subarray(row * 64, row * 64 + 64), want.subarray(from * 64, from * 64 + 64), `${name} row ${row}`);
    }
  }
});

for (const type of ['Q8_0', 'Q4_0'] as const) {
  test(`${type}: matrices in ${type} blocks decode to the checkpoint within half a step (plus the float16 scale's rounding), norms stay F32`, () => {
    const { g } = written(type);
    assert.deepEqual(g.metadata.get('general.file_type'), { type: 4, value: type === 'Q8_0' ? 7 : 2 });
    assert.deepEqual(g.metadata.get('general.quantization_version'), { type: 4, value: 2 });
    const id = type === 'Q8_0' ? 8 : 2;
    const info = (name: string) => g.tensors.find((t) => t.name === name) as TensorInfo;
    assert.equal(info('blk.0.attn_norm.weight').type, 0);
    let end = 0;
    for (const t of g.tensors) {
      assert.equal(t.offset, Math.ceil(end / GGUF_ALIGNMENT) * GGUF_ALIGNMENT, `${t.name} follows the previous tensor`);
      const n = t.dims.reduce((a, b) => a * b, 1);
      end = t.offset + (t.type === 0 ? n * 4 : (n / 32) * BLOCK_BYTES[type]);
    }
    for (const [name, hf] of [
      ['token_embd.weight', 'model.embed_tokens.weight'],
      ['blk.1.ffn_up.weight', 'model.layers.1.mlp.up_proj.weight'],
      ['output.weight', 'lm_head.weight'],
    ] as const) {
      assert.equal(info(name).type, id, name);
      const { values, scales } = decode(g, info(name));
      const want = source.get(hf) as Float32Array;
      let clamped = 0;
      for (let i = 0; i < want.length; i++) {
        const step = Math.abs(scales[i] as number);
        const code = Math.abs((values[i] as number) / (scales[i] as number));
        // float16 holds the scale to 2^-11 of itself; the code multiplies that error.
        const error = Math.abs((values[i] as number) - (want[i] as number));
        const bound = step / 2 + code * step * 2 ** -11 + 1e-7;
        if (error > bound && type === 'Q4_0' && code === 7) clamped++;
        else assert.ok(error <= bound, `${name}[${i}]: ${values[i]} vs ${want[i]} (step ${step})`);
      }
      // Q4_0's codes run from -8 to 7: only a block's value near -m (the negated extreme) is clamped, a step off.
      assert.ok(clamped <= want.length / 32, `${clamped} clamped values`);
    }
  });
}

test("Q4_0 packs element j in the low nibble and j + 16 in the high nibble; Q8_0 rounds halves away from zero, as ggml's reference does", () => {
  const x = Float32Array.from({ length: 32 }, (_, j) => (j === 5 ? -8 : j < 16 ? j / 4 : -(j - 16) / 4));
  const out = new Uint8Array(18);
  encodeQ4_0(x, 0, 1, out, 0);
  // m = -8, d = 1: code = trunc(x / 1 + 8.5) clamped to 15.
  assert.equal(float16Value(out[0]! | (out[1]! << 8)), 1);
  const code = (v: number) => Math.min(15, Math.trunc(v + 8.5));
  for (let j = 0; j < 16; j++) assert.equal(out[2 + j], code(x[j]!) | (code(x[j + 16]!) << 4), `byte ${j}`);
  const y = Float32Array.from({ length: 32 }, (_, j) => (j === 0 ? 127 : j === 1 ? -2.5 : j === 2 ? 2.5 : 0));
  const q8 = new Uint8Array(34);
  encodeQ8_0(y, 0, 1, q8, 0);
  assert.deepEqual([float16Value(q8[0]! | (q8[1]! << 8)), (q8[3]! << 24) >> 24, q8[4], q8[2]], [1, -3, 3, 127]);
});

test('the RoPE permutation moves row h·D + s·D/2 + j to h·D + 2j + s', () => {
  const [heads, D, cols] = [2, 4, 3];
  const data = Float32Array.from({ length: heads * D * cols }, (_, i) => i);
  permuteRopeRows(data, heads, D, cols);
  // Rows per head: [0, 1, 2, 3] -> [0, 2, 1, 3].
  const rows = Array.from({ length: heads * D }, (_, r) => (data[r * cols] as number) / cols);
  assert.deepEqual(rows, [0, 2, 1, 3, 4, 6, 5, 7]);
});

test("a header past the writer's first 64 KiB (a real vocabulary) reads back whole", () => {
  const path = join(root, 'big-header.gguf');
  const tokens = Array.from({ length: 20000 }, (_, i) => `token-${i}`);
  const values = Float32Array.from({ length: 64 }, (_, i) => i / 8);
  writeGguf(path, [['tokenizer.ggml.tokens', { type: 'array', element: 'string', value: tokens }], ['general.alignment', { type: 'uint32', value: 32 }]], [{ name: 'x', dims: [64], type: 'F32', values: () => values }]);
  const g = readGguf(path);
  assert.deepEqual(g.metadata.get('tokenizer.ggml.tokens')?.value, tokens);
  assert.ok(g.dataOffset > 2 ** 16);
  assert.deepEqual(decode(g, g.tensors[0] as TensorInfo).values, values);
});

test('tied embeddings leave output.weight out; llama3 RoPE scaling is written as rope_freqs, the factor each frequency is divided by', () => {
  const scaling = { rope_type: 'llama3', factor: 8, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 512 } as const;
  const tied = smallLlama({ vocab_size: 300, hidden_size: 64, intermediate_size: 96 }, { tie_word_embeddings: true, rope_scaling: scaling });
  const dir = join(root, 'tied-llama3');
  writeCheckpoint(randomCheckpointContents(tied, 9), dir, { family: 'llama', dtype: 'F32' });
  const path = join(root, 'tied-llama3.gguf');
  writeLlamaGguf(dir, path, 'Q8_0');
  const g = readGguf(path);
  assert.equal(g.tensors.find((t) => t.name === 'output.weight'), undefined);
  const freqs = g.tensors.find((t) => t.name === 'rope_freqs.weight') as TensorInfo;
  assert.deepEqual([freqs.dims, freqs.type], [[8], 0]);
  // Llama 3's rule, per pair j of a 16-wide head: wavelengths under 512/4 keep their frequency, those over 512/1 are divided by 8, and between them the two blend.
  const want = Array.from({ length: 8 }, (_, j) => {
    const wavelength = (2 * Math.PI) / 10000 ** (-(2 * j) / 16);
    if (wavelength < 512 / 4) return 1;
    if (wavelength > 512 / 1) return 8;
    const smooth = (512 / wavelength - 1) / (4 - 1);
    return 1 / ((1 - smooth) / 8 + smooth);
  });
  const got = decode(g, freqs).values;
  for (const [j, w] of want.entries()) assert.ok(Math.abs((got[j] as number) - w) < 1e-5 * w, `rope_freqs[${j}] ${got[j]} vs ${w}`);
  assert.ok(want.includes(1) && want.includes(8) && want.some((w) => w > 1 && w < 8), 'the head spans all three regimes');
});
