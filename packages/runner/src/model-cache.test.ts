/** Models as artifacts: fetched once from a store, verified against a pinned fingerprint, loaded once. */
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { tinyLlamaSpec, writeModelFolder } from '@kvfold/model-zoo';
import { startTestS3Server, type TestS3Server } from '@kvfold/storage/testing';
import { ModelCache, pushModel } from './model-cache.ts';

const root = mkdtempSync(join(tmpdir(), 'kvfold-model-cache-'));
const local = join(root, 'tiny');
let s3: TestS3Server;
let cache: ModelCache;

before(async () => {
  await writeModelFolder(tinyLlamaSpec(), local);
  s3 = await startTestS3Server();
  cache = new ModelCache({ cacheDir: join(root, 'cache'), storeOptions: { s3: s3.settings } });
});
after(async () => {
  await cache.close();
  await s3.stop();
  rmSync(root, { recursive: true, force: true });
});

test('a model pushed to a store is fetched into the cache once and has the local folder’s fingerprint', async () => {
  const uri = s3.uri('models/tiny');
  const pushed = await pushModel(local, uri, { s3: s3.settings });
  assert.equal(pushed.files, 7);
  assert.ok(pushed.bytes > 300_000, `${pushed.bytes} bytes`);
  const remote = await cache.get(uri);
  const direct = await cache.get(local);
  assert.equal(remote.fingerprints.model, direct.fingerprints.model);
  assert.equal(await cache.get(uri), remote, 'one loaded model per reference');
  assert.equal(readdirSync(join(root, 'cache')).length, 1);
});

test('a pinned fingerprint that does not match is refused, naming both', async () => {
  await assert.rejects(cache.get({ uri: local, fingerprint: 'sha256:0000' }), /has fingerprint sha256:[0-9a-f]{64}, but the batch pins sha256:0000/);
  const right = (await cache.get(local)).fingerprints.model;
  assert.equal((await cache.get({ uri: local, fingerprint: right })).fingerprints.model, right);
});

test('a store location without a model says so', async () => {
  await assert.rejects(cache.get(s3.uri('models/absent')), (e: Error & { code?: string }) => e.code === 'KVF_MODEL_NOT_FOUND' && /holds no objects/.test(e.message));
});
