/**
 * A model whose weights file is over 2 GiB (tiny-llama's external data grown to 2 GiB + 1 byte
 * as a sparse file, which ONNX Runtime reads only where its tensors are) goes through
 * `pushModel` and `ModelCache` on the filesystem store and on the S3-protocol test server, with
 * peak memory far below the file's size. `readFile` stops at 2 GiB, so a whole-file read fails.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { truncate } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { after, before, test } from 'node:test';
import { tinyLlamaSpec, writeModelFolder } from '@kvfold/model-zoo';
import { startTestS3Server, type TestS3Server } from '@kvfold/storage/testing';
import { ModelCache } from './model-cache.ts';
import { pushModel } from './model-push.ts';

const GiB = 1024 ** 3;
const WEIGHTS_BYTES = 2 * GiB + 1;
/** Far below the weights: what a process streaming them holds, with room for ONNX Runtime and s3rver. */
const RSS_BOUND = GiB / 2;

const root = mkdtempSync(join(tmpdir(), 'kvfold-model-large-'));
const local = join(root, 'tiny-big');
let s3: TestS3Server;
let cache: ModelCache;

before(async () => {
  await writeModelFolder(tinyLlamaSpec(), local);
  await truncate(join(local, 'onnx', 'model.onnx_data'), WEIGHTS_BYTES);
  s3 = await startTestS3Server();
  cache = new ModelCache({ cacheDir: join(root, 'cache'), storeOptions: { s3: s3.settings } });
});
after(async () => {
  await cache.close();
  await s3.stop();
  rmSync(root, { recursive: true, force: true });
});

const peakRss = () => process.resourceUsage().maxRSS * 1024;

test('a model with a weights file over 2 GiB is pushed to and loaded from the filesystem store', async () => {
  const uri = pathToFileURL(join(root, 'fs-store', 'tiny-big')).href;
  const pushed = await pushModel(local, uri);
  assert.equal(pushed.bytes > WEIGHTS_BYTES, true);
  const model = await cache.get(uri);
  assert.equal(model.fingerprints.model, pushed.fingerprint);
  assert.ok(peakRss() < RSS_BOUND, `peak RSS ${(peakRss() / 2 ** 20).toFixed(0)} MiB`);
});

test('a model with a weights file over 2 GiB goes up to S3 in parts and is fetched into the cache as a stream', async () => {
  const uri = s3.uri('models/tiny-big');
  const pushed = await pushModel(local, uri, { s3: s3.settings });
  const parts = s3.requests.filter((r) => r.startsWith('PUT ') && r.includes('/models/tiny-big/onnx/model.onnx_data?') && r.includes('partNumber=')).length;
  assert.equal(parts, Math.ceil(WEIGHTS_BYTES / (8 * 2 ** 20)), 'multipart in 8 MiB parts');
  const head = await s3.store('models/tiny-big').head('onnx/model.onnx_data');
  assert.equal(head?.size, WEIGHTS_BYTES);
  const model = await cache.get(uri);
  assert.equal(model.fingerprints.model, pushed.fingerprint, 'the fetched copy is the pushed folder, byte for byte');
  assert.ok(peakRss() < RSS_BOUND, `peak RSS ${(peakRss() / 2 ** 20).toFixed(0)} MiB`);
});
