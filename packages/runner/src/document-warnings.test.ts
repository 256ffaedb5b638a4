/**
 * A document whose text the model's vocabulary cannot encode is folded, and its result says so:
 * `warnings` in the stored result line, on the real recall model (a word-level vocabulary with
 * `<unk>`) through runLocal on a filesystem store.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { documentResultsPrefix } from '@kvfold/contract';
import { recallSpec, writeModelFolder } from '@kvfold/model-zoo';
import { FsObjectStore } from '@kvfold/storage';
import { pino } from 'pino';
import { ModelCache } from './model-cache.ts';
import { runLocal } from './run-local.ts';

const root = mkdtempSync(join(tmpdir(), 'kvfold-doc-warnings-'));
const models = new ModelCache({ cacheDir: join(root, 'cache') });
after(async () => {
  await models.close();
  rmSync(root, { recursive: true, force: true });
});

test('text that maps to <unk> is a warning in the document’s result, and the fold still completes', async () => {
  const model = join(root, 'recall');
  await writeModelFolder(recallSpec(), model);
  writeFileSync(join(root, 'known.txt'), 'f1 KEY n1 f2');
  writeFileSync(join(root, 'unknown.txt'), 'f1 hello KEY n1 world f2');
  const store = new FsObjectStore(join(root, 'store'));
  const run = await runLocal({
    inputs: [join(root, 'known.txt'), join(root, 'unknown.txt')],
    spec: { model, queries: [], chunkSize: 4 },
    store,
    models,
    log: pino({ level: 'silent' }),
  });
  assert.equal(run.completed, 2);
  const results = new Map<string, { warnings?: string[] }>();
  for await (const o of store.list(documentResultsPrefix(run.batchId))) {
    const r = JSON.parse(new TextDecoder().decode(await store.getBytes(o.key)));
    results.set((r.paths[0] as string).split('/').at(-1) as string, r);
  }
  const unknown = results.get('unknown.txt');
  const known = results.get('known.txt');
  assert.ok(unknown && known, `results for both documents, got ${[...results.keys()].join(', ')}`);
  assert.equal(unknown.warnings?.length, 1);
  assert.match(unknown.warnings?.[0] ?? '', /^document \S*unknown\.txt: 2 <unk> tokens; the tokenizer of \S*recall cannot encode part of the text/);
  assert.equal(known.warnings, undefined);
});
