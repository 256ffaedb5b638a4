/**
 * A model whose weights file is over 2 GiB (tiny-llama's external data grown to 2 GiB + 1 byte as
 * a sparse file, which ONNX Runtime reads only where its tensors are), with peak memory far below
 * the file's size: `pushModel` streams it into the filesystem store, and `ModelCache` fetches it
 * from the S3-protocol test server as a stream and verifies it. (`readFile` stops at 2 GiB; a
 * whole-object read holds it all.) Pushing such a file to s3rver is timed by `pnpm bench:models`:
 * it costs a minute here, so this test places the big object on the server directly.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { readFile, stat, truncate } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { pathToFileURL } from 'node:url';
import { tinyLlamaSpec, writeModelFolder } from '@kvfold/model-zoo';
import { startTestS3Server, type TestS3Server } from '@kvfold/storage/testing';
import { ModelCache } from './model-cache.ts';
import { MODEL_MANIFEST, type ModelManifest, pushModel } from './model-push.ts';

const GiB = 1024 ** 3;
const WEIGHTS = 'onnx/model.onnx_data';
const WEIGHTS_BYTES = 2 * GiB + 1;
/** Far below the weights: what a process streaming them holds, with room for ONNX Runtime and s3rver. */
const RSS_BOUND = GiB / 2;

const root = mkdtempSync(join(tmpdir(), 'kvfold-model-large-'));
const small = join(root, 'tiny');
const big = join(root, 'tiny-big');
let s3: TestS3Server;
let cache: ModelCache;

before(async () => {
  await writeModelFolder(tinyLlamaSpec(), small);
  await writeModelFolder(tinyLlamaSpec(), big);
  await truncate(join(big, WEIGHTS), WEIGHTS_BYTES);
  s3 = await startTestS3Server();
  cache = new ModelCache({ cacheDir: join(root, 'cache'), storeOptions: { s3: s3.settings } });
});
after(async () => {
  await cache.close();
  await s3.stop();
  rmSync(root, { recursive: true, force: true });
});

const peakRss = () => process.resourceUsage().maxRSS * 1024;

test('a model with a weights file over 2 GiB is pushed into the filesystem store as streams and loads from there', async () => {
  const uri = pathToFileURL(join(root, 'fs-store', 'tiny-big')).href;
  const pushed = await pushModel(big, uri);
  assert.equal((await stat(join(root, 'fs-store', 'tiny-big', WEIGHTS))).size, WEIGHTS_BYTES);
  const model = await cache.get(uri);
  assert.equal(model.fingerprints.model, pushed.fingerprint);
  assert.ok(peakRss() < RSS_BOUND, `peak RSS ${(peakRss() / 2 ** 20).toFixed(0)} MiB`);
});

test('a model with a weights file over 2 GiB is fetched from S3 as a stream and verified against its manifest', async () => {
  const uri = s3.uri('models/tiny-big');
  const prefix = 'models/tiny-big/';
  const small_ = await pushModel(small, uri, { s3: s3.settings }); // the small files, and a manifest to replace
  const weights = await readFile(join(small, WEIGHTS)); // the real tensors, then zeros: the big file's bytes
  await s3.placeSparseObject(`${prefix}${WEIGHTS}`, WEIGHTS_BYTES, weights);
  const store = s3.store('models/tiny-big');
  const manifest = JSON.parse(new TextDecoder().decode(await store.getBytes(MODEL_MANIFEST))) as ModelManifest;
  const local = await cache.get(big);
  const bigManifest: ModelManifest = {
    ...manifest,
    fingerprint: local.fingerprints.model,
    files: manifest.files.map((f) => (f.path === WEIGHTS ? { ...f, size: WEIGHTS_BYTES } : f)),
  };
  assert.notEqual(bigManifest.fingerprint, small_.fingerprint);
  await store.put(MODEL_MANIFEST, new TextEncoder().encode(JSON.stringify(bigManifest)));
  const model = await cache.get(uri);
  assert.equal(model.fingerprints.model, local.fingerprints.model, 'the fetched copy is the big folder, byte for byte');
  assert.ok(s3.requests.some((r) => r.startsWith(`GET /${s3.bucket}/${prefix}${WEIGHTS}`)), 'fetched over S3');
  assert.ok(peakRss() < RSS_BOUND, `peak RSS ${(peakRss() / 2 ** 20).toFixed(0)} MiB`);
});
