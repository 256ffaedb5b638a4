/**
 * A document whose KV cache the machine cannot hold fails alone, with its size, before anything is
 * allocated; the batch's other documents fold. The model has a cache of 2 MiB a token (64 layers of
 * 32 KV heads of 128, float32), so a 100K-token document needs 195 GiB, more than any test machine;
 * and so do 64 questions of 1,000 tokens decoded together over a short one.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { documentResultsPrefix } from '@kvfold/contract';
import { byteLevelTokenizer, type LlamaConfig, randomLlamaWeights, writeModelFolder } from '@kvfold/model-zoo';
import { FsObjectStore } from '@kvfold/storage';
import { pino } from 'pino';
import { ModelCache } from './model-cache.ts';
import { runLocal } from './run-local.ts';

const root = mkdtempSync(join(tmpdir(), 'kvfold-cache-limits-'));
const models = new ModelCache({ cacheDir: join(root, 'cache') });
after(async () => {
  await models.close();
  rmSync(root, { recursive: true, force: true });
});

/** A model with a 2 MiB a token cache, written once. */
let hugeCache: Promise<string> | undefined;
function hugeCacheModel(): Promise<string> {
  hugeCache ??= (async () => {
    const tok = byteLevelTokenizer();
    const config: LlamaConfig = {
      vocab_size: tok.vocabSize,
      hidden_size: 8,
      intermediate_size: 8,
      num_hidden_layers: 64,
      num_attention_heads: 32,
      num_key_value_heads: 32,
      head_dim: 128,
      rope_theta: 10000,
      rms_norm_eps: 1e-5,
      max_position_embeddings: 131072,
      tie_word_embeddings: true,
      bos_token_id: tok.bosId,
      eos_token_id: tok.eosId,
    };
    const model = join(root, 'huge-cache');
    await writeModelFolder(
      { name: 'huge-cache', config, weights: randomLlamaWeights(config, 1, { embeddingStd: 0.25 }), tokenizer: tok.tokenizer, tokenizerConfig: tok.tokenizerConfig, generationConfig: {}, description: 'a 2 MiB a token cache' },
      model,
    );
    return model;
  })();
  return hugeCache;
}

async function failures(store: FsObjectStore, batchId: string): Promise<{ paths: string[]; status: string; error?: { code: string; message: string } }[]> {
  const results: { paths: string[]; status: string; error?: { code: string; message: string } }[] = [];
  for await (const o of store.list(documentResultsPrefix(batchId))) results.push(JSON.parse(new TextDecoder().decode(await store.getBytes(o.key))));
  return results;
}

test('a document whose cache exceeds the memory available fails alone, naming its rows and bytes', async () => {
  const model = await hugeCacheModel();
  writeFileSync(join(root, 'long.txt'), 'x'.repeat(100_000));
  writeFileSync(join(root, 'short.txt'), 'a short one');
  const store = new FsObjectStore(join(root, 'store'));
  const run = await runLocal({
    inputs: [join(root, 'long.txt'), join(root, 'short.txt')],
    spec: { model, queries: [], chunkSize: 64 },
    store,
    models,
    log: pino({ level: 'silent' }),
  });
  assert.deepEqual([run.completed, run.failed], [1, 1]);
  const results = await failures(store, run.batchId);
  const long = results.find((r) => r.paths[0]?.endsWith('long.txt'));
  assert.equal(long?.status, 'failed');
  assert.equal(long?.error?.code, 'KVF_DOC_NO_MEMORY');
  assert.match(long?.error?.message ?? '', /long\.txt \(100001 tokens\): a KV cache of 100001 rows needs 195\.3 GiB, but .* of memory is available/);
});

test('questions decoded together reserve their rows before the fold: a batch size the memory cannot hold is refused by name', async () => {
  const model = await hugeCacheModel();
  writeFileSync(join(root, 'tiny.txt'), 'a short one');
  const store = new FsObjectStore(join(root, 'store-batch'));
  // 64 questions of 1,000 tokens, answered 64 at a time: 64 x 1,000 rows after the document's 12.
  const queries = Array.from({ length: 64 }, (_, i) => `${String(i).padStart(2, '0')} ${'q'.repeat(997)}`);
  const run = await runLocal({
    inputs: [join(root, 'tiny.txt')],
    spec: { model, queries, chunkSize: 64, maxNewTokens: 1, maxBatchSize: 64 },
    store,
    models,
    log: pino({ level: 'silent' }),
  });
  assert.deepEqual([run.completed, run.failed], [0, 1]);
  const [tiny] = await failures(store, run.batchId);
  assert.equal(tiny?.error?.code, 'KVF_DOC_NO_MEMORY');
  assert.match(tiny?.error?.message ?? '', /tiny\.txt \(12 tokens\): a KV cache of 64012 rows needs 125\.0 GiB, .*; 64000 of the rows are the answers of 64 questions decoded together: lower --max-batch-size$/);
});
