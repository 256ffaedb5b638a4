/** Bad model folders are refused with the file named and what to do. */
import assert from 'node:assert/strict';
import { cpSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { DataType, GraphBuilder } from '@kvfold/model-zoo';
import { fingerprintModel, loadModel, type ModelError, readModelFolder } from './index.ts';
import { scratchDir, tinyLlamaFolder } from './test-models.ts';


test('a missing folder names the path and how to build a model', async () => {
  await assert.rejects(readModelFolder('/nonexistent/model'), (err: ModelError) => {
    assert.equal(err.code, 'KVF_MODEL_NOT_FOUND');
    assert.match(err.message, /\/nonexistent\/model does not exist/);
    assert.match(err.message, /kvfold models build/);
    return true;
  });
});

test('a folder without onnx/ or config.json says which file is missing', async () => {
  const dir = await tinyLlamaFolder('broken-1');
  rmSync(join(dir, 'onnx'), { recursive: true });
  await assert.rejects(readModelFolder(dir), /has no onnx\/ directory/);
  rmSync(join(dir, 'config.json'));
  await assert.rejects(readModelFolder(dir), /has no config.json/);
});

test('a malformed config.json is reported with the field', async () => {
  const dir = await tinyLlamaFolder('broken-2');
  writeFileSync(join(dir, 'config.json'), '{"vocab_size": "many"');
  await assert.rejects(readModelFolder(dir), (e: ModelError) => e.code === 'KVF_MODEL_MALFORMED' && /not valid JSON/.test(e.message));
  writeFileSync(join(dir, 'config.json'), JSON.stringify({ vocab_size: 'many', hidden_size: 8, num_hidden_layers: 1, num_attention_heads: 1, max_position_embeddings: 8 }));
  await assert.rejects(readModelFolder(dir), /config.json is not a usable model config: vocab_size:/);
});

test('a corrupt ONNX file is reported as such', async () => {
  const dir = await tinyLlamaFolder('broken-3');
  writeFileSync(join(dir, 'onnx/model.onnx'), 'not a protobuf');
  await assert.rejects(loadModel(dir), (e: ModelError) => e.code === 'KVF_MODEL_MALFORMED' && /cannot load .*model.onnx/.test(e.message));
});

test('a graph that is not a decoder with past_key_values is refused, listing its I/O', async () => {
  const dir = join(scratchDir, 'not-a-decoder');
  cpSync(await tinyLlamaFolder('donor'), dir, { recursive: true });
  const g = new GraphBuilder('classifier');
  const x = g.input({ name: 'input_ids', elemType: DataType.INT64, shape: ['batch', 'seq'] });
  g.output({ name: 'logits', elemType: DataType.INT64, shape: ['batch', 'seq'] }, x);
  writeFileSync(join(dir, 'onnx/model.onnx'), g.serialize(17, { externalThreshold: Number.POSITIVE_INFINITY, externalName: 'x' }).model);
  rmSync(join(dir, 'onnx/model.onnx_data'));
  await assert.rejects(loadModel(dir), (e: ModelError) => {
    assert.equal(e.code, 'KVF_MODEL_NOT_A_DECODER');
    assert.match(e.message, /is not a decoder with past_key_values: no past_key_values/);
    assert.match(e.message, /Inputs: \[input_ids\]; outputs: \[logits\]/);
    return true;
  });
});

test('cuda, where unavailable, fails with a message that says how to enable it', async () => {
  await assert.rejects(loadModel(await tinyLlamaFolder('cuda'), { device: 'cuda' }), (e: ModelError) => {
    assert.equal(e.code, 'KVF_MODEL_DEVICE');
    assert.match(e.message, /execution provider "cuda" is unavailable/);
    assert.match(e.message, /gpu:install-cuda/);
    return true;
  });
});

test('fingerprints are stable across copies and change with the weights or the tokenizer', async () => {
  const a = await tinyLlamaFolder('fp-a', { seed: 1 });
  const copy = join(scratchDir, 'fp-copy');
  cpSync(a, copy, { recursive: true });
  const fa = await fingerprintModel(await readModelFolder(a));
  assert.deepEqual(await fingerprintModel(await readModelFolder(copy)), fa);
  assert.match(fa.model, /^sha256:[0-9a-f]{64}$/);
  const fb = await fingerprintModel(await readModelFolder(await tinyLlamaFolder('fp-b', { seed: 2 })));
  assert.notEqual(fb.model, fa.model);
  assert.equal(fb.tokenizer, fa.tokenizer);
  writeFileSync(join(copy, 'tokenizer_config.json'), '{}');
  const fc = await fingerprintModel(await readModelFolder(copy));
  assert.notEqual(fc.tokenizer, fa.tokenizer);
  assert.notEqual(fc.model, fa.model);
});

test('the chat template renders and continues a folded document without a second BOS', async () => {
  const m = await loadModel(await tinyLlamaFolder('chat'));
  try {
    assert.ok(m.tokenizer.hasChatTemplate);
    const ids = Array.from(m.tokenizer.encodeChat([{ role: 'user', content: 'hi' }], { continuing: true }));
    assert.deepEqual(ids, [m.tokenizer.tokenToId('<|user|>'), 104, 105, m.tokenizer.tokenToId('<|assistant|>')]);
    assert.equal(m.tokenizer.encodeDocument('hi')[0], m.tokenizer.tokenToId('<|begin_of_text|>'));
  } finally {
    await m.close();
  }
});
