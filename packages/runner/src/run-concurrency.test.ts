/**
 * `kvfold run --concurrency N`: several documents folded at once on one tiny-llama session that
 * serves several slots, their steps sharing session runs. Each document's result (answers, token
 * count, status) is the one it gets when the documents are folded one after another.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { tinyLlamaSpec, writeModelFolder } from '@kvfold/model-zoo';
import { FsObjectStore } from '@kvfold/storage';
import { pino } from 'pino';
import { ModelCache } from './model-cache.ts';
import { runLocal } from './run-local.ts';

const root = mkdtempSync(join(tmpdir(), 'kvfold-run-concurrency-'));
const model = join(root, 'tiny');
const docs = join(root, 'docs');
after(() => rmSync(root, { recursive: true, force: true }));

before(async () => {
  await writeModelFolder(tinyLlamaSpec(), model);
  mkdirSync(docs);
  const words = ['fold', 'cache', 'chunk', 'key', 'value', 'position', 'layer', 'token'];
  for (let i = 0; i < 5; i++) writeFileSync(join(docs, `d${i}.txt`), Array.from({ length: 60 + 25 * i }, (_, j) => words[(i * 3 + j * j) % words.length]).join(' '));
});

async function run(concurrency: number, slots: number) {
  const models = new ModelCache({ cacheDir: join(root, `cache-${concurrency}`), slots });
  try {
    const store = new FsObjectStore(join(root, `store-${concurrency}`));
    const r = await runLocal({
      inputs: [docs],
      spec: { model, queries: ['What is folded?'], chunkSize: 32, maxNewTokens: 12 },
      store,
      models,
      log: pino({ level: 'silent' }),
      concurrency,
    });
    const loaded = await models.get(model, 'float32');
    const lines = new TextDecoder().decode(await store.getBytes(`batches/${r.batchId}/results.jsonl`)).trim().split('\n');
    const results = lines.map((l) => JSON.parse(l) as { docId: string; status: string; tokens: number; answers: { tokenIds: number[] }[] });
    return { run: r, counters: { ...loaded.decoder.counters }, results: results.sort((a, b) => a.docId.localeCompare(b.docId)).map((x) => ({ docId: x.docId, status: x.status, tokens: x.tokens, answers: x.answers.map((a) => a.tokenIds) })) };
  } finally {
    await models.close();
  }
}

test('five documents folded three at a time share session runs and give the results they give one at a time', async () => {
  const alone = await run(1, 1);
  const together = await run(3, 3);
  assert.equal(together.run.completed, 5);
  assert.deepEqual(together.results, alone.results);
  assert.equal(alone.counters.sharedSteps, 0);
  assert.equal(together.counters.steps, alone.counters.steps, 'the same steps');
  assert.ok(together.counters.sharedSteps > together.counters.steps / 2 && together.counters.runs < alone.counters.runs, `${together.counters.steps} steps in ${together.counters.runs} runs (${alone.counters.runs} one at a time), ${together.counters.sharedSteps} shared`);
});
