/**
 * Objects over 2 GiB on the filesystem store, made cheap with sparse files: `getBytes` reads one
 * whole where `readFile` stops at 2 GiB, and refuses, saying to stream, past the largest buffer.
 * (Streaming push and fetch of such files: packages/runner/src/model-cache-large.test.ts.)
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, open, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { StoreError } from './errors.ts';
import { FsObjectStore } from './fs-object-store.ts';

const GiB = 1024 ** 3;
/** One byte past what `readFile` reads (2 GiB - 1). */
const OVER_2GIB = 2 * GiB + 1;
const MARK = randomBytes(16);

let root: string;
let store: FsObjectStore;

/** A sparse object of `size` bytes, zeros but for MARK at its start and its end. */
async function sparseObject(key: string, size: number): Promise<void> {
  const path = join(root, ...key.split('/'));
  await mkdir(join(path, '..'), { recursive: true });
  const handle = await open(path, 'w');
  try {
    await handle.truncate(size);
    await handle.write(MARK, 0, MARK.length, 0);
    await handle.write(MARK, 0, MARK.length, size - MARK.length);
  } finally {
    await handle.close();
  }
}

before(async () => {
  root = await mkdtemp(join(tmpdir(), 'kvfold-large-object-'));
  store = new FsObjectStore(root);
  await sparseObject('big/weights.bin', OVER_2GIB);
});
after(() => rm(root, { recursive: true, force: true }));

test('getBytes reads a whole object over 2 GiB into one buffer', async () => {
  const bytes = await store.getBytes('big/weights.bin');
  assert.equal(bytes.length, OVER_2GIB);
  assert.ok(Buffer.from(bytes.subarray(0, MARK.length)).equals(MARK));
  assert.ok(Buffer.from(bytes.subarray(OVER_2GIB - MARK.length)).equals(MARK));
});

test('getBytes of an object larger than one buffer says to stream it, naming the key and size', async () => {
  const size = 4 * GiB + 1;
  await sparseObject('huge/weights.bin', size);
  await assert.rejects(store.getBytes('huge/weights.bin'), (e: unknown) => {
    assert.ok(e instanceof StoreError && e.code === 'KVF_STORE_TOO_LARGE', String(e));
    assert.match(e.message, /huge\/weights\.bin .* is 4294967297 bytes, .* read it as a stream with get\(\)/);
    return true;
  });
});
