/**
 * `importCheckpoint` of checkpoints this test writes in the Hugging Face layout, one per family
 * quirk: the folder it writes is the one `writeModelFolder` (what `models build` runs) writes for
 * the same spec, byte for byte; it folds chunk by chunk to the built folder's single pass with the
 * same greedy answers; and its single pass equals the independent float64 reference forward pass.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import type { LlamaSpec } from '../llama-spec.ts';
import { writeModelFolder } from '../model-folder.ts';
import { ReferenceDecoder } from '../recall/reference-forward.ts';
import { importCheckpoint } from './import-checkpoint.ts';
import { type CheckpointDtype, type WriteCheckpointOptions, specContents, writeCheckpoint } from './write-checkpoint.ts';
import { type FamilySpecOptions, SMALL_LLAMA3_SCALING, familySpec, foldFolder, maxAbsDiff, promptIds, roundedSpec } from './test-support.ts';

const root = mkdtempSync(join(tmpdir(), 'kvfold-import-test-'));
after(() => rmSync(root, { recursive: true, force: true }));

/** Prompt length and fold chunk: uneven, so the last chunk is short; past the 128-token wavelength where llama3 scaling starts to bite. */
const PROMPT = promptIds(150);
const CHUNK = 37;
const NEW_TOKENS = 8;
const TOLERANCE = 1e-4;

interface Case {
  readonly name: string;
  readonly spec: FamilySpecOptions;
  readonly checkpoint: WriteCheckpointOptions;
  /** Also store lm_head.weight though the embeddings are tied (some checkpoints do). */
  readonly tiedHeadStored?: boolean;
}

const CASES: Case[] = [
  { name: 'Llama, one F32 file, untied lm_head', spec: { family: 'llama' }, checkpoint: { family: 'llama', dtype: 'F32' } },
  {
    name: 'Llama 3.1-style: BF16 in 3 shards with an index, llama3 rope_scaling, tied, head_dim derived, chat_template.jinja',
    spec: { family: 'llama', tied: true, ropeScaling: SMALL_LLAMA3_SCALING },
    checkpoint: { family: 'llama', dtype: 'BF16', shards: 3, omitHeadDim: true, chatTemplateFile: true },
  },
  { name: 'Llama with attention_bias and mlp_bias, F16', spec: { family: 'llama', biases: 'all' }, checkpoint: { family: 'llama', dtype: 'F16' } },
  { name: 'Mistral, BF16 in 2 shards, sliding_window null', spec: { family: 'mistral' }, checkpoint: { family: 'mistral', dtype: 'BF16', shards: 2 } },
  { name: 'Qwen2, BF16, q/k/v biases, tied with lm_head stored too', spec: { family: 'qwen2', tied: true }, checkpoint: { family: 'qwen2', dtype: 'BF16' }, tiedHeadStored: true },
];

/** The spec as its checkpoint holds it: weights rounded to the file's dtype. */
function asStored(spec: LlamaSpec, dtype: CheckpointDtype): LlamaSpec {
  return dtype === 'F32' ? spec : roundedSpec(spec, dtype);
}

function writeCase(c: Case, dir: string): LlamaSpec {
  const spec = familySpec(c.spec);
  const contents = specContents(spec);
  const embed = spec.weights.get('model.embed_tokens.weight');
  const tensors = c.tiedHeadStored && embed ? [...contents.tensors, { name: 'lm_head.weight', shape: embed.shape, values: (emit: (x: Float32Array) => void) => emit(embed.data) }] : contents.tensors;
  writeCheckpoint({ ...contents, tensors }, dir, c.checkpoint);
  return asStored(spec, c.checkpoint.dtype ?? 'BF16');
}

const bytes = (dir: string, file: string) => readFileSync(join(dir, file));

CASES.forEach((c, i) => {
  test(`imports ${c.name}: the built folder's bytes, its fold and greedy answers, and the reference forward pass`, async () => {
    const checkpoint = join(root, `ckpt-${i}`);
    const stored = writeCase(c, checkpoint);
    if (c.checkpoint.shards && c.checkpoint.shards > 1) assert.ok(readdirSync(checkpoint).includes('model.safetensors.index.json'));
    const imported = join(root, `imported-${i}`);
    const result = await importCheckpoint(checkpoint, imported);
    const built = join(root, `built-${i}`);
    await writeModelFolder(stored, built);

    assert.deepEqual(readdirSync(imported).sort(), ['README.md', 'config.json', 'generation_config.json', 'kvfold-built.txt', 'onnx', 'tokenizer.json', 'tokenizer_config.json']);
    assert.ok(bytes(imported, 'onnx/model.onnx').equals(bytes(built, 'onnx/model.onnx')), 'model.onnx is the one models build writes');
    assert.ok(bytes(imported, 'onnx/model.onnx_data').equals(bytes(built, 'onnx/model.onnx_data')), 'model.onnx_data is the one models build writes');
    assert.equal(result.tensors, stored.weights.size);
    assert.equal(result.config.head_dim, 16);

    const config = JSON.parse(bytes(imported, 'config.json').toString());
    assert.equal(config.head_dim, 16, 'config.json states the head_dim the graph was built with');
    assert.deepEqual(config.rope_scaling, c.spec.ropeScaling ?? null);
    const tokenizerConfig = JSON.parse(bytes(imported, 'tokenizer_config.json').toString());
    assert.equal(typeof tokenizerConfig.chat_template, 'string', 'the chat template is in tokenizer_config.json');
    assert.deepEqual(JSON.parse(bytes(imported, 'generation_config.json').toString()), stored.generationConfig);

    const single = await foldFolder(built, PROMPT, PROMPT.length, NEW_TOKENS);
    const folded = await foldFolder(imported, PROMPT, CHUNK, NEW_TOKENS);
    const diff = maxAbsDiff(folded.logits, single.logits);
    assert.ok(diff <= TOLERANCE, `max |folded imported - single built| = ${diff}`);
    assert.deepEqual(folded.greedy, single.greedy);

    const reference = new ReferenceDecoder(stored).forward(PROMPT);
    const own = await foldFolder(imported, PROMPT, PROMPT.length, 0);
    const refDiff = maxAbsDiff(own.logits, reference);
    assert.ok(refDiff <= TOLERANCE, `max |imported single pass - float64 reference| = ${refDiff}`);
  });
});

test('--dtype f16 stores float16 weights (half the data file) that Cast to the float16-rounded model', async () => {
  const c = CASES[4] as Case;
  const checkpoint = join(root, 'ckpt-f16');
  const stored = writeCase(c, checkpoint);
  const imported = join(root, 'imported-f16');
  const result = await importCheckpoint(checkpoint, imported, { dtype: 'f16' });
  assert.equal(result.dtype, 'f16');
  const half = roundedSpec(stored, 'F16');
  const built = join(root, 'built-f16');
  await writeModelFolder(half, built, { weightDtype: 'float16' });
  assert.ok(bytes(imported, 'onnx/model.onnx_data').equals(bytes(built, 'onnx/model.onnx_data')));
  assert.ok(bytes(imported, 'onnx/model.onnx').equals(bytes(built, 'onnx/model.onnx')));
  await writeModelFolder(stored, join(root, 'built-f16-as-f32'));
  const ratio = statSync(join(imported, 'onnx/model.onnx_data')).size / statSync(join(root, 'built-f16-as-f32', 'onnx/model.onnx_data')).size;
  assert.ok(ratio < 0.56, `float16 data is ${ratio} of float32's`);
  assert.equal(JSON.parse(bytes(imported, 'config.json').toString()).torch_dtype, 'float16');

  const own = await foldFolder(imported, PROMPT, CHUNK, 0);
  const diff = maxAbsDiff(own.logits, new ReferenceDecoder(half).forward(PROMPT));
  assert.ok(diff <= TOLERANCE, `max |f16 import folded - reference on float16 weights| = ${diff}`);
});

test('a weight beyond float16 is refused under --dtype f16 with the weight named, and no folder is left', async () => {
  const spec = familySpec({ family: 'llama' });
  const down = spec.weights.get('model.layers.1.mlp.down_proj.weight');
  assert.ok(down);
  down.data[5] = 1e6;
  const checkpoint = join(root, 'ckpt-huge');
  writeCheckpoint(specContents(spec), checkpoint, { family: 'llama', dtype: 'F32' });
  const out = join(root, 'imported-huge');
  await assert.rejects(importCheckpoint(checkpoint, out, { dtype: 'f16' }), (err: Error & { code?: string }) => {
    assert.equal(err.code, 'KVF_IMPORT_UNSUPPORTED');
    assert.match(err.message, /weight model\.layers\.1\.mlp\.down_proj\.weight holds 1000000 .*beyond float16's range.*--dtype f32/);
    return true;
  });
  assert.ok(!existsSync(out));
  assert.deepEqual(readdirSync(root).filter((f) => f.includes('.partial-')), []);
  // The same checkpoint imports as float32.
  await importCheckpoint(checkpoint, out);
  assert.ok(existsSync(join(out, 'onnx/model.onnx_data')));
});

for (const dtype of ['int8', 'int4'] as const) {
  test(`--dtype ${dtype} writes the folder models build writes at ${dtype}, and says so in config.json and the README`, async () => {
    const c = CASES[1] as Case; // tied, BF16, sharded: the embedding's codes serve lm_head
    const checkpoint = join(root, `ckpt-${dtype}`);
    const stored = writeCase(c, checkpoint);
    const imported = join(root, `imported-${dtype}`);
    const result = await importCheckpoint(checkpoint, imported, { dtype });
    assert.equal(result.dtype, dtype);
    const built = join(root, `built-${dtype}`);
    await writeModelFolder(stored, built, { weightDtype: dtype });
    assert.ok(bytes(imported, 'onnx/model.onnx_data').equals(bytes(built, 'onnx/model.onnx_data')));
    assert.ok(bytes(imported, 'onnx/model.onnx').equals(bytes(built, 'onnx/model.onnx')));
    const config = JSON.parse(bytes(imported, 'config.json').toString());
    assert.equal(config.torch_dtype, 'float32');
    assert.deepEqual([config.quantization.method, config.quantization.bits, config.quantization.block_size], ['MatMulNBits', dtype === 'int4' ? 4 : 8, 32]);
    assert.match(bytes(imported, 'README.md').toString(), new RegExp(`Weights stored as ${dtype}, block-quantized`));
    // It folds, chunk by chunk, to its own single pass.
    const folded = await foldFolder(imported, PROMPT, CHUNK, 0);
    const single = await foldFolder(imported, PROMPT, PROMPT.length, 0);
    assert.ok(maxAbsDiff(folded.logits, single.logits) <= TOLERANCE);
  });
}

test('a NaN weight is refused under --dtype int4 naming the tensor, and no folder is left', async () => {
  const spec = familySpec({ family: 'llama' });
  const up = spec.weights.get('model.layers.0.mlp.up_proj.weight');
  assert.ok(up);
  up.data[7] = Number.NaN;
  const checkpoint = join(root, 'ckpt-nan');
  writeCheckpoint(specContents(spec), checkpoint, { family: 'llama', dtype: 'F32' });
  const out = join(root, 'imported-nan');
  await assert.rejects(importCheckpoint(checkpoint, out, { dtype: 'int4' }), (err: Error & { code?: string }) => {
    assert.equal(err.code, 'KVF_IMPORT_MALFORMED');
    assert.match(err.message, /weight model\.layers\.0\.mlp\.up_proj\.weight holds NaN at element 7 .*cannot be quantized/);
    return true;
  });
  assert.ok(!existsSync(out));
});
