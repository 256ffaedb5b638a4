/** The builder writes the optimum layout, deterministically, and the graph folds exactly under plain onnxruntime-node. */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { promisify } from 'node:util';
import { Tokenizer } from '@huggingface/tokenizers';
import * as ort from 'onnxruntime-node';
import { modelSpec, tinyLlamaSpec, writeModelFolder } from './index.ts';

const root = mkdtempSync(join(tmpdir(), 'kvfold-zoo-test-'));
after(() => rmSync(root, { recursive: true, force: true }));

const digest = (dir: string) =>
  Object.fromEntries(
    ['config.json', 'tokenizer.json', 'onnx/model.onnx', 'onnx/model.onnx_data'].map((f) => [f, createHash('sha256').update(readFileSync(join(dir, f))).digest('hex')]),
  );

test('the folder has the optimum layout, with weights in external data', async () => {
  const dir = join(root, 'layout');
  await writeModelFolder(tinyLlamaSpec(), dir);
  assert.deepEqual(readdirSync(dir).sort(), ['README.md', 'config.json', 'generation_config.json', 'kvfold-built.txt', 'onnx', 'tokenizer.json', 'tokenizer_config.json']);
  assert.deepEqual(readdirSync(join(dir, 'onnx')).sort(), ['model.onnx', 'model.onnx_data']);
  const config = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'));
  assert.equal(config.model_type, 'llama');
  assert.deepEqual(config.architectures, ['LlamaForCausalLM']);
  // Weights (above 1 KiB) are external: the graph file is small, the data file holds them.
  assert.ok(readFileSync(join(dir, 'onnx/model.onnx')).length < 64 * 1024);
  assert.ok(readFileSync(join(dir, 'onnx/model.onnx_data')).length > 300 * 1024);
});

test('the same seed gives identical bytes; another seed gives other weights', async () => {
  await writeModelFolder(modelSpec('tiny-llama', { seed: 7 }), join(root, 'a'));
  await writeModelFolder(modelSpec('tiny-llama', { seed: 7 }), join(root, 'b'));
  await writeModelFolder(modelSpec('tiny-llama', { seed: 8 }), join(root, 'c'));
  assert.deepEqual(digest(join(root, 'a')), digest(join(root, 'b')));
  const a = digest(join(root, 'a'));
  const c = digest(join(root, 'c'));
  assert.notEqual(a['onnx/model.onnx_data'], c['onnx/model.onnx_data']);
  assert.equal(a['tokenizer.json'], c['tokenizer.json']);
});

test('the session exposes the KV input/output names and shapes of optimum exports', async () => {
  const dir = join(root, 'io');
  await writeModelFolder(tinyLlamaSpec(), dir);
  const s = await ort.InferenceSession.create(join(dir, 'onnx/model.onnx'));
  const inputs = Object.fromEntries(s.inputMetadata.map((m) => [m.name, m.isTensor ? [m.type, m.shape] : null]));
  assert.deepEqual(inputs, {
    input_ids: ['int64', ['batch_size', 'sequence_length']],
    attention_mask: ['int64', ['batch_size', 'total_sequence_length']],
    position_ids: ['int64', ['batch_size', 'sequence_length']],
    'past_key_values.0.key': ['float32', ['batch_size', 2, 'past_sequence_length', 16]],
    'past_key_values.0.value': ['float32', ['batch_size', 2, 'past_sequence_length', 16]],
    'past_key_values.1.key': ['float32', ['batch_size', 2, 'past_sequence_length', 16]],
    'past_key_values.1.value': ['float32', ['batch_size', 2, 'past_sequence_length', 16]],
  });
  assert.deepEqual(
    s.outputMetadata.map((m) => [m.name, m.isTensor ? m.shape : null]),
    [
      ['present.0.key', ['batch_size', 2, 'total_sequence_length', 16]],
      ['present.0.value', ['batch_size', 2, 'total_sequence_length', 16]],
      ['present.1.key', ['batch_size', 2, 'total_sequence_length', 16]],
      ['present.1.value', ['batch_size', 2, 'total_sequence_length', 16]],
      ['logits', ['batch_size', 'sequence_length', 260]],
    ],
  );
  await s.release();
});

test('the tokenizer.json loads in the tokenizers library and round-trips any UTF-8', async () => {
  const spec = tinyLlamaSpec();
  const tok = new Tokenizer(spec.tokenizer, spec.tokenizerConfig);
  const text = 'Grüße, 世界! tabs\tand\nnewlines 🙂';
  const ids = tok.encode(text).ids;
  assert.equal(ids[0], 256, 'BOS first');
  assert.equal(ids.length, 1 + new TextEncoder().encode(text).length, 'one token per byte');
  assert.equal(tok.decode(ids, { skip_special_tokens: true }), text);
});

test('a plain onnxruntime-node script folds the folder chunk by chunk to the single-pass logits', async () => {
  const dir = join(root, 'plain');
  await writeModelFolder(tinyLlamaSpec({ untied: true }), dir);
  const script = new URL('../scripts/plain-ort-fold.mjs', import.meta.url).pathname;
  const { stdout } = await promisify(execFile)(process.execPath, [script, dir, '--tokens', '300', '--chunk', '37']);
  const r = JSON.parse(stdout) as { steps: number; layers: number; maxAbsDiff: number };
  assert.equal(r.steps, 9);
  assert.equal(r.layers, 2);
  assert.ok(r.maxAbsDiff <= 1e-4, `max |folded - single| = ${r.maxAbsDiff}`);
});

test('kv-heavy has Llama-3.1-8B’s cache geometry: 32 layers of 8 KV heads of 128, 256 KiB of float32 KV a token', async () => {
  const dir = join(root, 'kv-heavy');
  const spec = modelSpec('kv-heavy');
  await writeModelFolder(spec, dir);
  const c = spec.config;
  assert.deepEqual([c.num_hidden_layers, c.num_key_value_heads, c.head_dim], [32, 8, 128]);
  assert.equal(2 * c.num_hidden_layers * c.num_key_value_heads * c.head_dim * 4, 256 * 1024);
  const s = await ort.InferenceSession.create(join(dir, 'onnx/model.onnx'));
  const past = s.inputMetadata.filter((m) => m.name.startsWith('past_key_values.'));
  assert.equal(past.length, 64);
  assert.deepEqual(past[0]?.isTensor ? past[0].shape : null, ['batch_size', 8, 'past_sequence_length', 128]);
  // The weights are small: the cost of a fold is its cache, not its projections.
  assert.ok(readFileSync(join(dir, 'onnx/model.onnx_data')).length < 64 * 2 ** 20);
  await s.release();
});
