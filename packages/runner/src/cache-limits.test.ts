/**
 * A document whose KV cache the machine cannot hold fails alone, with its size, before anything is
 * allocated; the batch's other documents fold. The model has a cache of 2 MiB a token (64 layers of
 * 32 KV heads of 128, float32), so a 100K-token document needs 195 GiB, more than any test machine.
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

test('a document whose cache exceeds the memory available fails alone, naming its rows and bytes', async () => {
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
  const results: { paths: string[]; status: string; error?: { code: string; message: string } }[] = [];
  for await (const o of store.list(documentResultsPrefix(run.batchId))) results.push(JSON.parse(new TextDecoder().decode(await store.getBytes(o.key))));
  const long = results.find((r) => r.paths[0]?.endsWith('long.txt'));
  assert.equal(long?.status, 'failed');
  assert.equal(long?.error?.code, 'KVF_DOC_NO_MEMORY');
  assert.match(long?.error?.message ?? '', /long\.txt \(100001 tokens\): a KV cache of 100001 rows needs 195\.3 GiB, but .* of memory is available/);
});
