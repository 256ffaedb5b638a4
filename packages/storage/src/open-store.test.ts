/**
 * openStore and parseStoreUri: URI forms, malformed URIs failing fast, and an end-to-end open of
 * both kinds of store.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { S3ServiceException } from '@aws-sdk/client-s3';
import { StoreError } from './errors.ts';
import { FsObjectStore } from './fs-object-store.ts';
import { checkStore, openStore, parseStoreUri } from './open-store.ts';
import { mapS3Error } from './s3-errors.ts';
import { S3ObjectStore } from './s3-object-store.ts';
import { startTestS3Server, type TestS3Server } from './testing.ts';

describe('parseStoreUri', () => {
  test('s3 URIs give bucket and prefix', () => {
    assert.deepEqual(parseStoreUri('s3://my-bucket/a/b'), { kind: 's3', bucket: 'my-bucket', prefix: 'a/b' });
    assert.deepEqual(parseStoreUri('s3://my-bucket'), { kind: 's3', bucket: 'my-bucket', prefix: '' });
    assert.deepEqual(parseStoreUri('s3://my-bucket/'), { kind: 's3', bucket: 'my-bucket', prefix: '' });
  });

  test('file URIs and paths give an absolute root; relative paths resolve against cwd', () => {
    assert.deepEqual(parseStoreUri('file:///var/kv'), { kind: 'fs', root: '/var/kv' });
    assert.deepEqual(parseStoreUri('/var/kv'), { kind: 'fs', root: '/var/kv' });
    assert.deepEqual(parseStoreUri('data/kv', '/srv'), { kind: 'fs', root: '/srv/data/kv' });
    assert.deepEqual(parseStoreUri('./kv', '/srv'), { kind: 'fs', root: '/srv/kv' });
  });

  test('malformed URIs fail fast with KVF_STORE_BAD_URI naming the URI', () => {
    for (const uri of ['s3://', 's3:///prefix', 'ftp://x', 'file://relative', '', 's3://Bad_Bucket/x', 's3://b-1/a/../b']) {
      assert.throws(
        () => openStore(uri),
        (e: unknown) => e instanceof StoreError && e.code === 'KVF_STORE_BAD_URI' && e.message.includes(JSON.stringify(uri)),
        uri,
      );
    }
  });
});

describe('openStore', () => {
  let s3: TestS3Server;
  let dir: string;
  before(async () => {
    s3 = await startTestS3Server();
    dir = await mkdtemp(join(tmpdir(), 'kvfold-open-'));
  });
  after(async () => {
    await s3.stop();
    await rm(dir, { recursive: true, force: true });
  });

  test('opens a working filesystem store from a relative path', async () => {
    const store = openStore('kv', { cwd: dir });
    assert.ok(store instanceof FsObjectStore);
    assert.equal(store.uri, `file://${dir}/kv`);
    await checkStore(store);
    await store.put('k', new Uint8Array([1, 2, 3]));
    assert.deepEqual([...(await openStore(`file://${dir}/kv`).getBytes('k'))], [1, 2, 3]);
  });

  test('opens a working S3 store from an s3:// URI and settings', async () => {
    const store = openStore(s3.uri('via-uri/'), { s3: s3.settings });
    assert.ok(store instanceof S3ObjectStore);
    try {
      await checkStore(store);
      await store.put('k', new Uint8Array([4, 5]));
      assert.deepEqual([...(await store.getBytes('k'))], [4, 5]);
      assert.equal(await s3.store('via-uri').head('k').then((i) => i?.size), 2);
    } finally {
      store.destroy();
    }
  });
});

describe('mapS3Error', () => {
  const ctx = { uri: 's3://b/p/', endpoint: 'http://h:1', bucket: 'b', key: 'k', what: 'reading k' };
  const sdkError = (name: string, status: number) =>
    new S3ServiceException({ name, $fault: 'client', $metadata: { httpStatusCode: status }, message: name });

  // s3rver does not verify SigV4 signatures, so a wrong secret cannot be produced against it;
  // these are the error shapes AWS returns for one.
  test('a rejected signature or a denied request is a credentials error naming the URI', () => {
    for (const [name, status] of [
      ['SignatureDoesNotMatch', 403],
      ['InvalidAccessKeyId', 403],
      ['AccessDenied', 403],
      ['Forbidden', 403],
    ] as const) {
      const e = mapS3Error(sdkError(name, status), ctx);
      assert.equal(e.code, 'KVF_STORE_CREDENTIALS', name);
      assert.ok(e.message.includes('s3://b/p/'));
    }
  });

  test('404, 412 and connection errors map to not found, precondition failed and unreachable', () => {
    assert.equal(mapS3Error(sdkError('NoSuchKey', 404), ctx).code, 'KVF_STORE_NOT_FOUND');
    assert.equal(mapS3Error(sdkError('PreconditionFailed', 412), ctx).code, 'KVF_STORE_PRECONDITION_FAILED');
    const refused = Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' });
    const unreachable = mapS3Error(refused, ctx);
    assert.equal(unreachable.code, 'KVF_STORE_UNREACHABLE');
    assert.ok(unreachable.message.includes('http://h:1'));
    const dns = Object.assign(new Error('getaddrinfo ENOTFOUND nowhere'), { code: 'ENOTFOUND' });
    assert.equal(mapS3Error(dns, ctx).code, 'KVF_STORE_UNREACHABLE');
  });
});
