/**
 * `kvfold models import` as a user runs it: a checkpoint in the Hugging Face layout (written here
 * from tiny-llama's seeded weights) imports into a folder that `kvfold fold` and `kvfold run` use
 * with the answers and NLL of `kvfold models build tiny-llama`; refusals exit 1 with the message.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { specContents, tinyLlamaSpec, writeCheckpoint } from '@kvfold/model-zoo';
import { kvfold } from '../test-support.ts';

const root = mkdtempSync(join(tmpdir(), 'kvfold-cli-import-'));
const checkpoint = join(root, 'tiny-llama-hf');
const built = join(root, 'built');
const imported = join(root, 'imported');
const doc = join(root, 'doc.txt');
after(() => rmSync(root, { recursive: true, force: true }));

/** Checkpoint shards: the import must follow the index. */
const SHARDS = 2;

before(async () => {
  // F32, so the checkpoint holds exactly the weights `models build tiny-llama` uses.
  writeCheckpoint(specContents(tinyLlamaSpec()), checkpoint, { family: 'llama', dtype: 'F32', shards: SHARDS });
  writeFileSync(doc, 'The fold carries the KV cache from chunk to chunk, and positions continue. '.repeat(6));
  const b = await kvfold(['models', 'build', 'tiny-llama', '--out', built]);
  assert.equal(b.code, 0, b.stderr);
  const i = await kvfold(['models', 'import', checkpoint, '--out', imported, '--json']);
  assert.equal(i.code, 0, i.stderr);
  importJson = i.stdout;
});
let importJson = '';

interface FoldOut {
  tokens: number;
  answers: { tokenIds: number[]; text: string }[];
  nll: { step: number; nll: number }[];
}

const fold = async (model: string): Promise<FoldOut> => {
  const r = await kvfold(['fold', doc, '--model', model, '--chunk-size', '48', '--ask', 'What is carried?', '--ask', 'What continues?', '--max-new-tokens', '8', '--nll', '--json']);
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout) as FoldOut;
};

test('models import --json writes the folder and describes it', () => {
  const out = JSON.parse(importJson);
  assert.equal(out.architecture, 'LlamaForCausalLM');
  assert.equal(out.dtype, 'f32');
  assert.equal(out.attention, 'gqa');
  assert.deepEqual(out.sourceDtypes, { F32: 20 }); // embedding, 2 x 9 per layer, final norm; lm_head tied
  assert.deepEqual(out.largestTensor, { name: 'model.embed_tokens.weight', float32Bytes: 260 * 64 * 4 });
  assert.deepEqual(out.files, ['config.json', 'generation_config.json', 'tokenizer.json', 'tokenizer_config.json', 'README.md', 'onnx/model.onnx', 'onnx/model.onnx_data']);
  assert.ok(readFileSync(join(imported, 'onnx/model.onnx_data')).equals(readFileSync(join(built, 'onnx/model.onnx_data'))));
});

test('kvfold fold of the imported folder gives the built folder’s answers and NLL', async () => {
  const a = await fold(imported);
  const b = await fold(built);
  assert.equal(a.tokens, b.tokens);
  assert.deepEqual(
    a.answers.map((x) => x.tokenIds),
    b.answers.map((x) => x.tokenIds),
  );
  assert.equal(a.nll.length, b.nll.length);
  a.nll.forEach((c, i) => {
    assert.ok(Math.abs(c.nll - (b.nll[i]?.nll as number)) <= 1e-4, `step ${c.step}`);
  });
});

test('kvfold run serves the imported folder like the built one', async () => {
  const corpus = join(root, 'corpus');
  mkdirSync(corpus, { recursive: true });
  writeFileSync(join(corpus, 'a.txt'), 'Chunk after chunk, the cache grows. '.repeat(5));
  const answers = async (model: string, name: string) => {
    const out = join(root, `${name}.jsonl`);
    const r = await kvfold(['run', corpus, '--model', model, '--store', join(root, `store-${name}`), '--out', out, '--chunk-size', '32', '--ask', 'What grows?', '--max-new-tokens', '6', '--json']);
    assert.equal(r.code, 0, r.stderr);
    return readFileSync(out, 'utf8').trim().split('\n').map((l) => (JSON.parse(l) as { answers: { tokenIds: number[] }[] }).answers.map((x) => x.tokenIds));
  };
  assert.deepEqual(await answers(imported, 'imported'), await answers(built, 'built'));
});

test('--dtype f16 writes half the weight bytes and the folder folds', async () => {
  const out = join(root, 'imported-f16');
  const r = await kvfold(['models', 'import', checkpoint, '--out', out, '--dtype', 'f16']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^imported LlamaForCausalLM \(20 tensors, [\d.]+ MiB\) into .*imported-f16 as f16 in \d+ ms; use --model /);
  const ratio = statSync(join(out, 'onnx/model.onnx_data')).size / statSync(join(built, 'onnx/model.onnx_data')).size;
  assert.ok(ratio < 0.56, `ratio ${ratio}`);
  const f = await fold(out);
  assert.equal(f.answers.length, 2);
});

test('an unsupported checkpoint exits 1 with the refusal and writes nothing', async () => {
  const gemma = join(root, 'gemma');
  writeCheckpoint(specContents(tinyLlamaSpec()), gemma, { family: 'llama', dtype: 'F32', configOverrides: { architectures: ['GemmaForCausalLM'], model_type: 'gemma' } });
  const out = join(root, 'gemma-out');
  const r = await kvfold(['models', 'import', gemma, '--out', out]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /^kvfold: .*config\.json: architecture GemmaForCausalLM is not supported; models import builds LlamaForCausalLM .* \[KVF_IMPORT_UNSUPPORTED\]\n$/);
  assert.ok(!existsSync(out));
  const bad = await kvfold(['models', 'import', checkpoint, '--out', out, '--dtype', 'int3']);
  assert.notEqual(bad.code, 0);
  assert.match(bad.stderr, /--dtype.*int3.*f32, f16, int8, int4/);
});
