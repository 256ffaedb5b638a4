/**
 * checkModelRef() on folders, by the rule readModelFolder loads them by: onnx/model.onnx, or else
 * exactly one onnx/model*.onnx; config.json and tokenizer.json beside it.
 */
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { pathToFileURL } from 'node:url';
import { checkModelRef } from './model-ref.ts';

let root = '';
before(async () => {
  root = await mkdtemp(join(tmpdir(), 'kvfold-model-ref-'));
});
after(() => rm(root, { recursive: true, force: true }));

/** A folder holding `files` (relative paths), each a few bytes. */
async function folder(name: string, files: string[]): Promise<string> {
  const dir = join(root, name);
  for (const f of files) {
    await mkdir(join(dir, f, '..'), { recursive: true });
    await writeFile(join(dir, f), '{}');
  }
  return dir;
}

test('a folder with one decoder variant passes; with several and no model.onnx it is refused, naming them', async () => {
  const single = await folder('single', ['config.json', 'tokenizer.json', 'onnx/model_fp16.onnx', 'onnx/model_fp16.onnx_data']);
  await checkModelRef(single);
  await checkModelRef(pathToFileURL(single).href);
  await checkModelRef({ uri: single });
  const several = await folder('several', ['config.json', 'tokenizer.json', 'onnx/model_fp16.onnx', 'onnx/model_q4.onnx']);
  await assert.rejects(checkModelRef(several), {
    code: 'KVF_ENQUEUE_MODEL',
    message: `model ${several} has no onnx/model.onnx (it has onnx/model_fp16.onnx, onnx/model_q4.onnx; keep one) (expected the optimum export layout: config.json, tokenizer.json, tokenizer_config.json, onnx/model.onnx); point --model at a model folder; nothing was enqueued`,
  });
  await writeFile(join(several, 'onnx', 'model.onnx'), '{}');
  await checkModelRef(several);
});

test('a folder without config.json or tokenizer.json is refused, naming both', async () => {
  const bare = await folder('bare', ['onnx/model.onnx']);
  await assert.rejects(checkModelRef(bare), { code: 'KVF_ENQUEUE_MODEL', message: /has no config\.json, tokenizer\.json \(expected/ });
  const file = join(root, 'bare', 'onnx', 'model.onnx');
  await assert.rejects(checkModelRef(file), { code: 'KVF_ENQUEUE_MODEL', message: /is a file \(\S+model\.onnx\), not a model folder/ });
});
