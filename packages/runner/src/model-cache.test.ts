/**
 * Models as artifacts, on a real S3-protocol server and real tiny-llama folders: pushed with a
 * manifest, fetched once, verified against the manifest's fingerprint on use, fetched anew when the
 * store's copy changes, refused when it cannot be made to match.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { open, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { tinyLlamaSpec, writeModelFolder } from '@kvfold/model-zoo';
import type { ModelError } from '@kvfold/onnx';
import { startTestS3Server, type TestS3Server } from '@kvfold/storage/testing';
import { ModelCache } from './model-cache.ts';
import { MODEL_MANIFEST, pushModel } from './model-push.ts';

const root = mkdtempSync(join(tmpdir(), 'kvfold-model-cache-'));
const local = join(root, 'tiny');
const other = join(root, 'tiny-seed-2');
let s3: TestS3Server;
let cache: ModelCache;
const caches: ModelCache[] = [];

/** A cache over `dir` (default: the shared one), closed after the tests. */
function newCache(dir = join(root, 'cache')): ModelCache {
  const c = new ModelCache({ cacheDir: dir, storeOptions: { s3: s3.settings } });
  caches.push(c);
  return c;
}

const refusal = (code: string, message: RegExp) => (e: unknown) => (e as ModelError).code === code && message.test((e as Error).message);

before(async () => {
  await writeModelFolder(tinyLlamaSpec(), local);
  await writeModelFolder(tinyLlamaSpec({ seed: 2 }), other);
  s3 = await startTestS3Server();
  cache = newCache();
});
after(async () => {
  for (const c of caches) await c.close();
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
  assert.equal(pushed.fingerprint, direct.fingerprints.model, 'the push hashed the files it sent');
  const manifest = JSON.parse(new TextDecoder().decode(await s3.store('models/tiny').getBytes(MODEL_MANIFEST)));
  assert.equal(manifest.fingerprint, direct.fingerprints.model);
  assert.equal(manifest.files.length, 7);
  const gets = s3.requests.filter((r) => r.startsWith('GET ') && r.includes('/models/tiny/onnx/')).length;
  assert.equal(await cache.get(uri), remote, 'one loaded model per reference');
  assert.equal(s3.requests.filter((r) => r.startsWith('GET ') && r.includes('/models/tiny/onnx/')).length, gets, 'no second fetch');
  assert.equal(readdirSync(join(root, 'cache')).length, 1);
});

test('a pinned fingerprint that does not match is refused, naming both', async () => {
  await assert.rejects(cache.get({ uri: local, fingerprint: 'sha256:0000' }), /has fingerprint sha256:[0-9a-f]{64}, but the batch pins sha256:0000/);
  const right = (await cache.get(local)).fingerprints.model;
  assert.equal((await cache.get({ uri: local, fingerprint: right })).fingerprints.model, right);
});

test('a pinned fingerprint that the manifest contradicts is refused before any weights are fetched', async () => {
  const uri = s3.uri('models/pinned');
  await pushModel(local, uri, { s3: s3.settings });
  await assert.rejects(newCache(join(root, 'cache-pinned')).get({ uri, fingerprint: 'sha256:1111' }), /but the batch pins sha256:1111/);
  assert.equal(s3.requests.filter((r) => r.startsWith('GET ') && r.includes('/models/pinned/onnx/')).length, 0);
});

test('a model pushed again to the same URI is fetched anew at its next use, and the old copy is dropped', async () => {
  const uri = s3.uri('models/moving');
  const dir = join(root, 'cache-moving');
  const c = newCache(dir);
  await pushModel(local, uri, { s3: s3.settings });
  const first = await c.get(uri);
  const pushed = await pushModel(other, uri, { s3: s3.settings });
  const second = await c.get(uri);
  assert.notEqual(second.fingerprints.model, first.fingerprints.model);
  assert.equal(second.fingerprints.model, pushed.fingerprint);
  assert.equal(readdirSync(readdirSync(dir).map((d) => join(dir, d))[0] as string).filter((e) => !e.endsWith('.json')).length, 1, 'one cached version');
});

test('a local folder rebuilt in place is loaded anew at its next use', async () => {
  const path = join(root, 'rebuilt');
  await writeModelFolder(tinyLlamaSpec(), path);
  const c = newCache(join(root, 'cache-rebuilt'));
  const first = await c.get(path);
  await writeModelFolder(tinyLlamaSpec({ seed: 2 }), path);
  const second = await c.get(path);
  assert.notEqual(second.fingerprints.model, first.fingerprints.model);
  assert.equal(await c.get(path), second, 'unchanged since: the same loaded model');
});

test('a cached copy damaged on disk is noticed by its fingerprint when loaded, and fetched again', async () => {
  const uri = s3.uri('models/damaged');
  const dir = join(root, 'cache-damaged');
  const pushed = await pushModel(local, uri, { s3: s3.settings });
  const first = newCache(dir);
  await first.get(uri);
  await first.close();
  const [home] = readdirSync(dir);
  const [version] = readdirSync(join(dir, home as string)).filter((e) => !e.endsWith('.json'));
  const weights = join(dir, home as string, version as string, 'onnx', 'model.onnx_data');
  const before = await readFile(weights);
  const handle = await open(weights, 'r+');
  await handle.write(Buffer.from([before[100]! ^ 0xff]), 0, 1, 100); // one flipped byte, same size
  await handle.close();
  const model = await newCache(dir).get(uri);
  assert.equal(model.fingerprints.model, pushed.fingerprint);
  assert.ok((await readFile(weights)).equals(before), 'the weights were fetched again');
});

test('a store whose weights no longer match the manifest is refused after a second fetch, saying to push again', async () => {
  const uri = s3.uri('models/tampered');
  await pushModel(local, uri, { s3: s3.settings });
  const store = s3.store('models/tampered');
  const weights = Buffer.from(await store.getBytes('onnx/model.onnx_data'));
  weights[100] = (weights[100] as number) ^ 0xff;
  await store.put('onnx/model.onnx_data', weights);
  const before = s3.requests.filter((r) => r.startsWith('GET ') && r.includes('/models/tampered/onnx/model.onnx_data')).length;
  await assert.rejects(
    newCache(join(root, 'cache-tampered')).get(uri),
    refusal('KVF_MODEL_MALFORMED', /fetched twice into .* has fingerprint sha256:\w+, not the sha256:\w+ its kvfold-model\.json names: .* push it again/),
  );
  assert.equal(s3.requests.filter((r) => r.startsWith('GET ') && r.includes('/models/tampered/onnx/model.onnx_data')).length - before, 2);
  await store.put('onnx/model.onnx_data', weights.subarray(1));
  await assert.rejects(
    newCache(join(root, 'cache-tampered-2')).get(uri),
    refusal('KVF_MODEL_NOT_FOUND', /is incomplete: its kvfold-model\.json lists onnx\/model\.onnx_data \(\d+ bytes\) but the store has \d+ bytes/),
  );
});

test('a folder uploaded without a manifest is fetched by its listing and refetched when an object changes', async () => {
  const uri = s3.uri('models/plain');
  const store = s3.store('models/plain');
  for (const f of readdirSync(local, { recursive: true, withFileTypes: true }).filter((e) => e.isFile())) {
    const path = join(f.parentPath, f.name);
    await store.put(path.slice(local.length + 1), await readFile(path));
  }
  const c = newCache(join(root, 'cache-plain'));
  const direct = await cache.get(local);
  assert.equal((await c.get(uri)).fingerprints.model, direct.fingerprints.model);
  await store.put('onnx/model.onnx_data', await readFile(join(other, 'onnx', 'model.onnx_data')));
  await store.put('onnx/model.onnx', await readFile(join(other, 'onnx', 'model.onnx')));
  assert.notEqual((await c.get(uri)).fingerprints.model, direct.fingerprints.model);
});

test('a store location without a model says so', async () => {
  await assert.rejects(cache.get(s3.uri('models/absent')), (e: Error & { code?: string }) => e.code === 'KVF_MODEL_NOT_FOUND' && /holds no objects/.test(e.message));
});
