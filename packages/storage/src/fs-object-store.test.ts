/**
 * FsObjectStore on real temp directories: atomic writes, conditional-put races (in one process and
 * across processes), ranges, listing order, deletes.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readdir, rm, utimes, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { Readable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { collect } from './body.ts';
import { ObjectNotFoundError, PreconditionFailedError, StoreError } from './errors.ts';
import { lockPathOf } from './fs-lock.ts';
import { FsObjectStore } from './fs-object-store.ts';

const enc = (s: string) => new TextEncoder().encode(s);
const dec = (b: Uint8Array) => new TextDecoder().decode(b);

async function allFiles(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  return entries.filter((e) => e.isFile()).map((e) => join(e.parentPath, e.name).slice(dir.length + 1));
}

describe('FsObjectStore', () => {
  let root: string;
  let store: FsObjectStore;
  before(async () => {
    root = await mkdtemp(join(tmpdir(), 'kvfold-fs-store-'));
    store = new FsObjectStore(root);
  });
  after(() => rm(root, { recursive: true, force: true }));

  test('put then get, getBytes and head return the bytes, size and etag', async () => {
    const { etag } = await store.put('docs/a/one.bin', enc('hello world'));
    assert.equal(dec(await store.getBytes('docs/a/one.bin')), 'hello world');
    assert.equal(dec(await collect(await store.get('docs/a/one.bin'))), 'hello world');
    const info = await store.head('docs/a/one.bin');
    assert.deepEqual({ key: info?.key, size: info?.size, etag: info?.etag }, { key: 'docs/a/one.bin', size: 11, etag });
    assert.equal(await store.head('docs/a/none.bin'), null);
    await assert.rejects(store.getBytes('docs/a/none.bin'), ObjectNotFoundError);
    await assert.rejects(store.get('docs/a/none.bin'), ObjectNotFoundError);
  });

  test('streamed and async-iterable bodies are stored byte-exactly and replacing changes the etag', async () => {
    const chunks = Array.from({ length: 50 }, (_, i) => new Uint8Array(1000).fill(i));
    const first = await store.put('stream/x', Readable.from(chunks));
    const second = await store.put(
      'stream/x',
      (async function* () {
        yield* chunks.slice(0, 10);
      })(),
    );
    assert.notEqual(first.etag, second.etag);
    const got = await store.getBytes('stream/x');
    assert.equal(got.length, 10_000);
    assert.equal(got[9999], 9);
  });

  test('a body that fails midway leaves the old object intact and no temp file', async () => {
    await store.put('atomic/k', enc('old'));
    const failing = (async function* () {
      yield enc('new-partial');
      throw new Error('disk went away');
    })();
    await assert.rejects(store.put('atomic/k', failing), (e: unknown) => e instanceof StoreError && e.code === 'KVF_STORE_IO');
    assert.equal(dec(await store.getBytes('atomic/k')), 'old');
    assert.deepEqual(await allFiles(join(root, 'atomic')), ['k']);
  });

  test('a lock older than the stale age is broken (its holder died or is stuck); a fresh one is waited for, then refused', async () => {
    const waiter = new FsObjectStore(root, { lockStaleMs: 2_000, lockTimeoutMs: 300 });
    const lockFor = async (key: string, ageMs: number) => {
      const lock = lockPathOf(join(root, ...key.split('/')));
      await mkdir(dirname(lock), { recursive: true });
      await writeFile(lock, `${process.pid} ${hostname()} token`);
      const at = new Date(Date.now() - ageMs);
      await utimes(lock, at, at);
    };
    await lockFor('locks/fresh.txt', 0);
    await assert.rejects(waiter.put('locks/fresh.txt', enc('x')), (err: unknown) => err instanceof StoreError && err.code === 'KVF_STORE_LOCKED');
    await lockFor('locks/old.txt', 60_000);
    await waiter.put('locks/old.txt', enc('y'));
    assert.equal(dec(await waiter.getBytes('locks/old.txt')), 'y');
  });

  test('the etag a put answers is the stored object\'s', async () => {
    const { etag } = await store.put('etags/one.txt', enc('first'));
    assert.equal((await store.head('etags/one.txt'))?.etag, etag);
    const second = await store.put('etags/one.txt', enc('second!'), { ifMatch: etag });
    assert.equal((await store.head('etags/one.txt'))?.etag, second.etag);
    assert.notEqual(second.etag, etag);
  });

  test('many writes leave no temp or lock files behind', async () => {
    await Promise.all(Array.from({ length: 20 }, (_, i) => store.put(`clean/${i % 4}`, enc(`v${i}`))));
    assert.deepEqual((await allFiles(join(root, 'clean'))).sort(), ['0', '1', '2', '3']);
  });

  test('ifNoneMatch: of 16 concurrent creates exactly one wins', async () => {
    const results = await Promise.allSettled(
      Array.from({ length: 16 }, (_, i) => store.put('race/create', enc(`writer-${i}`), { ifNoneMatch: '*' })),
    );
    const won = results.flatMap((r, i) => (r.status === 'fulfilled' ? [i] : []));
    assert.equal(won.length, 1);
    for (const r of results) {
      if (r.status === 'rejected') assert.ok(r.reason instanceof PreconditionFailedError, String(r.reason));
    }
    assert.equal(dec(await store.getBytes('race/create')), `writer-${won[0]}`);
    assert.deepEqual(await allFiles(join(root, 'race')), ['create']);
  });

  test('ifMatch: of 16 concurrent replaces of one version exactly one wins', async () => {
    const { etag } = await store.put('race/replace', enc('v0'));
    const results = await Promise.allSettled(
      Array.from({ length: 16 }, (_, i) => store.put('race/replace', enc(`v1-${i}`), { ifMatch: etag })),
    );
    const won = results.flatMap((r, i) => (r.status === 'fulfilled' ? [i] : []));
    assert.equal(won.length, 1);
    assert.equal(dec(await store.getBytes('race/replace')), `v1-${won[0]}`);
    await assert.rejects(store.put('race/replace', enc('x'), { ifMatch: etag }), PreconditionFailedError);
    await assert.rejects(store.put('race/absent', enc('x'), { ifMatch: etag }), PreconditionFailedError);
  });

  test('conditional creates racing across 4 processes: one winner per key', async () => {
    const fixture = fileURLToPath(new URL('./fs-race.fixture.ts', import.meta.url));
    const keys = Array.from({ length: 12 }, (_, i) => `xproc/k${i}`);
    const run = promisify(execFile);
    const outs = await Promise.all(
      [0, 1, 2, 3].map((w) => run(process.execPath, ['--import', 'tsx', fixture, root, `w${w}`, ...keys])),
    );
    const wins = outs.map((o) => JSON.parse(o.stdout) as string[]);
    const all = wins.flat().sort();
    assert.deepEqual(all, [...keys].sort(), 'every key won exactly once');
    for (const key of keys) {
      const writer = dec(await store.getBytes(key));
      assert.ok(wins[Number(writer.slice(1))]?.includes(key), `${key} holds the winner's bytes`);
    }
  });

  test('ranged reads: middle, open end, clamped end, empty; a start past the end is refused', async () => {
    await store.put('range/r', enc('0123456789'));
    assert.equal(dec(await store.getBytes('range/r', { start: 2, end: 5 })), '234');
    assert.equal(dec(await collect(await store.get('range/r', { start: 2, end: 5 }))), '234');
    assert.equal(dec(await store.getBytes('range/r', { start: 7 })), '789');
    assert.equal(dec(await collect(await store.get('range/r', { start: 7 }))), '789');
    assert.equal(dec(await store.getBytes('range/r', { start: 8, end: 100 })), '89');
    assert.equal((await store.getBytes('range/r', { start: 3, end: 3 })).length, 0);
    const badRange = (e: unknown) => e instanceof StoreError && e.code === 'KVF_STORE_BAD_RANGE';
    await assert.rejects(store.getBytes('range/r', { start: 10 }), badRange);
    await assert.rejects(store.get('range/r', { start: 5, end: 2 }), badRange);
    await assert.rejects(store.getBytes('range/r', { start: -1 }), badRange);
  });

  test('list is recursive, in key order, matches partial segments and skips temp and lock files', async () => {
    for (const k of ['ls/b/2', 'ls/a', 'ls/b/10', 'ls/b1/x', 'ls/c/d/e', 'lsx']) await store.put(k, enc(k));
    await writeFile(join(root, 'ls', 'b', '.kvfold-tmp-crashed'), 'junk');
    const keys = async (p: string) => {
      const out: string[] = [];
      for await (const o of store.list(p)) out.push(o.key);
      return out;
    };
    assert.deepEqual(await keys('ls/'), ['ls/a', 'ls/b/10', 'ls/b/2', 'ls/b1/x', 'ls/c/d/e']);
    assert.deepEqual(await keys('ls/b'), ['ls/b/10', 'ls/b/2', 'ls/b1/x']);
    assert.deepEqual(await keys('ls/b/'), ['ls/b/10', 'ls/b/2']);
    assert.deepEqual(await keys('nothing/'), []);
    const sizes = [];
    for await (const o of store.list('ls/c/')) sizes.push(o.size);
    assert.deepEqual(sizes, [8]);
  });

  test('delete is idempotent and prunes emptied directories', async () => {
    await store.put('del/deep/er/k', enc('x'));
    await store.delete('del/deep/er/k');
    await store.delete('del/deep/er/k');
    await store.delete('del/never/existed');
    assert.equal(await store.head('del/deep/er/k'), null);
    await assert.rejects(readdir(join(root, 'del')), { code: 'ENOENT' });
  });

  test('keys that could escape the root are refused', async () => {
    const badKey = (e: unknown) => e instanceof StoreError && e.code === 'KVF_STORE_BAD_KEY';
    for (const k of ['', '/abs', '../up', 'a/../../b', 'a//b', 'a/./b', 'a\\b', 'x/.kvfold-lock.y']) {
      await assert.rejects(store.put(k, enc('x')), badKey, k);
    }
  });

  test('check() creates the root and fails, naming it, when the root is a file', async () => {
    const fresh = new FsObjectStore(join(root, 'new', 'root'));
    await fresh.check();
    await writeFile(join(root, 'plainfile'), 'x');
    const onFile = new FsObjectStore(join(root, 'plainfile'));
    await assert.rejects(onFile.check(), (e: unknown) => {
      return e instanceof StoreError && e.code === 'KVF_STORE_IO' && e.message.includes(onFile.uri);
    });
  });
});
