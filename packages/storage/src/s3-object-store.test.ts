/**
 * S3ObjectStore against a real S3-protocol server (s3rver on loopback, or the Ceph RADOS Gateway
 * with KVFOLD_TEST_S3=rgw): object operations, multipart uploads, the conditional-write probe,
 * error mapping for bad credentials, missing buckets and closed ports.
 */
import assert from 'node:assert/strict';
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  HeadObjectCommand,
  S3Client,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import { createHash, randomBytes } from 'node:crypto';
import { request as httpRequest } from 'node:http';
import { createServer } from 'node:net';
import { Readable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { collect } from './body.ts';
import { ObjectNotFoundError, PreconditionFailedError, StoreError } from './errors.ts';
import { MAX_PARTS, partSizeFor, S3ObjectStore } from './s3-object-store.ts';
import { checkStore } from './open-store.ts';
import { startTestS3Server, TEST_S3_CREDENTIALS, type TestS3Server, testS3Kind } from './testing.ts';

const enc = (s: string) => new TextEncoder().encode(s);
const dec = (b: Uint8Array) => new TextDecoder().decode(b);
const MiB = 1024 * 1024;

/** A port on 127.0.0.1 that nothing listens on (bound, then released). */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  const { port } = server.address() as { port: number };
  await new Promise<void>((ok) => server.close(() => ok()));
  return port;
}

const withCode = (code: string, ...mentions: string[]) => (e: unknown) => {
  assert.ok(e instanceof StoreError, `expected a StoreError, got ${String(e)}`);
  assert.equal(e.code, code, e.message);
  for (const m of mentions) assert.ok(e.message.includes(m), `message ${JSON.stringify(e.message)} names ${m}`);
  return true;
};

describe(`S3ObjectStore on ${testS3Kind}`, () => {
  let s3: TestS3Server;
  let store: S3ObjectStore;
  before(async () => {
    s3 = await startTestS3Server();
    store = s3.store('tenant/run-1');
  });
  after(() => s3.stop());

  test('put, get, getBytes, head, delete', async () => {
    const { etag } = await store.put('doc/a.bin', enc('hello s3'));
    assert.ok(etag.length > 0);
    assert.equal(dec(await store.getBytes('doc/a.bin')), 'hello s3');
    assert.equal(dec(await collect(await store.get('doc/a.bin'))), 'hello s3');
    const info = await store.head('doc/a.bin');
    assert.deepEqual({ key: info?.key, size: info?.size, etag: info?.etag }, { key: 'doc/a.bin', size: 8, etag });
    assert.equal(await store.head('doc/missing'), null);
    await assert.rejects(store.getBytes('doc/missing'), ObjectNotFoundError);
    await store.delete('doc/a.bin');
    await store.delete('doc/a.bin');
    assert.equal(await store.head('doc/a.bin'), null);
    assert.ok(s3.requests.some((r) => r.startsWith(`PUT /${s3.bucket}/tenant/run-1/doc/a.bin`)), 'keys sit under the prefix');
  });

  test('ranged reads', async () => {
    await store.put('range/r', enc('0123456789'));
    assert.equal(dec(await store.getBytes('range/r', { start: 2, end: 5 })), '234');
    assert.equal(dec(await store.getBytes('range/r', { start: 7 })), '789');
    assert.equal(dec(await store.getBytes('range/r', { start: 8, end: 100 })), '89');
    assert.equal((await store.getBytes('range/r', { start: 4, end: 4 })).length, 0);
    await assert.rejects(store.getBytes('range/r', { start: 5, end: 1 }), withCode('KVF_STORE_BAD_RANGE', 'range/r'));
  });

  test('list is in key order and strips the store prefix', async () => {
    for (const k of ['ls/b/2', 'ls/a', 'ls/b/10', 'ls/b1/x']) await store.put(k, enc(k));
    const keys: string[] = [];
    for await (const o of store.list('ls/b')) keys.push(o.key);
    assert.deepEqual(keys, ['ls/b/10', 'ls/b/2', 'ls/b1/x']);
  });

  test('list pages through more than one page of 1000 keys', async () => {
    const n = 1005;
    for (let i = 0; i < n; i += 50) {
      await Promise.all(
        Array.from({ length: Math.min(50, n - i) }, (_, j) => store.put(`many/${String(i + j).padStart(5, '0')}`, enc('.'))),
      );
    }
    let count = 0;
    let last = '';
    for await (const o of store.list('many/')) {
      assert.ok(o.key > last);
      last = o.key;
      count++;
    }
    assert.equal(count, n);
  });

  test('a 12 MiB stream goes up as a 3-part multipart upload and round-trips byte-identical', async () => {
    const big = randomBytes(12 * MiB);
    const mp = s3.store('mp', { partSize: 5 * MiB, queueSize: 2 });
    const before = s3.requests.length;
    // Uneven chunks, so the uploader has to re-cut them into parts.
    const chunks = [big.subarray(0, 3 * MiB + 7), big.subarray(3 * MiB + 7, 9 * MiB), big.subarray(9 * MiB)];
    await mp.put('big.bin', Readable.from(chunks));
    const parts = s3.requests.slice(before).filter((r) => r.startsWith('PUT ') && r.includes('partNumber='));
    assert.equal(parts.length, 3);
    const got = await mp.getBytes('big.bin');
    assert.ok(Buffer.from(got).equals(big), 'byte-identical');
    const head = await mp.head('big.bin');
    assert.equal(head?.size, 12 * MiB);
    assert.match(head?.etag ?? '', /^"[0-9a-f]{32}-3"$/, 'S3’s multipart ETag: md5 of the part md5s, dash, part count');
    const slice = await mp.getBytes('big.bin', { start: 5 * MiB - 3, end: 5 * MiB + 3 });
    assert.ok(Buffer.from(slice).equals(big.subarray(5 * MiB - 3, 5 * MiB + 3)));
  });

  test('a put announced with a size fails, naming the mismatch, when the body is shorter or longer', async () => {
    const sized = s3.store('sized', { partSize: 5 * MiB });
    const cases: [number, number, RegExp][] = [
      [10, 20, /ended after 10 of the 20 bytes announced/],
      [20, 10, /longer than the 10 bytes announced/],
      [11 * MiB, 12 * MiB, /ended after 11534336 of the 12582912 bytes announced/], // multipart, aborted
    ];
    for (const [length, size, message] of cases) {
      await assert.rejects(sized.put(`k${length}`, Readable.from([Buffer.alloc(length, 1)]), { size }), (e: unknown) => {
        assert.ok(e instanceof StoreError && e.code === 'KVF_STORE_IO', String(e));
        assert.match(e.message, message);
        return true;
      });
      assert.equal(await sized.head(`k${length}`), null, 'nothing was stored');
    }
    await sized.put('exact', Readable.from([Buffer.alloc(6 * MiB, 2)]), { size: 6 * MiB });
    assert.equal((await sized.head('exact'))?.size, 6 * MiB);
  });

  test('the server keeps S3’s multipart rules: small parts, part numbers and oversized bodies are refused', async () => {
    const client = new S3Client({ region: 'us-east-1', forcePathStyle: true, endpoint: s3.endpoint, credentials: TEST_S3_CREDENTIALS });
    try {
      const Bucket = s3.bucket;
      const Key = 'rules/small-parts';
      const { UploadId } = await client.send(new CreateMultipartUploadCommand({ Bucket, Key }));
      const part = async (PartNumber: number, bytes: number) =>
        (await client.send(new UploadPartCommand({ Bucket, Key, UploadId, PartNumber, Body: Buffer.alloc(bytes, PartNumber) }))).ETag as string;
      const parts = [
        { PartNumber: 1, ETag: await part(1, 1 * MiB) },
        { PartNumber: 2, ETag: await part(2, 1 * MiB) },
      ];
      await assert.rejects(
        client.send(new CompleteMultipartUploadCommand({ Bucket, Key, UploadId, MultipartUpload: { Parts: parts } })),
        // The gateway names no part in its message.
        (e: Error) => e.name === 'EntityTooSmall' && (testS3Kind === 'rgw' || /part 1 is 1048576 bytes/.test(e.message)),
      );
      // The gateway (Ceph 16) takes part numbers outside 1..10,000; the uploader never sends one.
      if (testS3Kind !== 'rgw') {
        await assert.rejects(part(0, 10), (e: Error) => e.name === 'InvalidArgument');
        await assert.rejects(part(10_001, 10), (e: Error) => e.name === 'InvalidArgument');
      }
      await client.send(new AbortMultipartUploadCommand({ Bucket, Key, UploadId }));
      await assert.rejects(client.send(new AbortMultipartUploadCommand({ Bucket, Key, UploadId })), (e: Error) => e.name === 'NoSuchUpload');
      // The last part may be small; the object's ETag is S3's multipart form.
      const second = await client.send(new CreateMultipartUploadCommand({ Bucket, Key: 'rules/ok' }));
      const okParts = [];
      for (const [n, bytes] of [[1, 5 * MiB], [2, 100]] as const) {
        const out = await client.send(new UploadPartCommand({ Bucket, Key: 'rules/ok', UploadId: second.UploadId, PartNumber: n, Body: Buffer.alloc(bytes, n) }));
        okParts.push({ PartNumber: n, ETag: out.ETag as string });
      }
      const done = await client.send(new CompleteMultipartUploadCommand({ Bucket, Key: 'rules/ok', UploadId: second.UploadId, MultipartUpload: { Parts: okParts } }));
      const md5 = createHash('md5');
      for (const p of okParts) md5.update(Buffer.from(p.ETag.replace(/"/g, ''), 'hex'));
      // The gateway's CompleteMultipartUpload answer carries no ETag; its HEAD does.
      const etag = testS3Kind === 'rgw' ? (await client.send(new HeadObjectCommand({ Bucket, Key: 'rules/ok' }))).ETag : done.ETag;
      assert.equal(etag, `"${md5.digest('hex')}-2"`);
      // A single PUT over 5 GiB is refused from its headers, before any body is read.
      const status = await new Promise<number>((ok, fail) => {
        const req = httpRequest(`${s3.endpoint}/${Bucket}/rules/huge`, { method: 'PUT', headers: { 'content-length': 5 * 1024 ** 3 + 1 } });
        req.on('response', (res) => {
          res.resume();
          req.destroy();
          ok(res.statusCode ?? 0);
        });
        req.on('error', fail);
        req.flushHeaders();
      });
      assert.equal(status, 400);
    } finally {
      client.destroy();
    }
  });

  test('checksums: CRC32, SHA256 and none all store bodies byte-exactly', async () => {
    const body = randomBytes(100_000);
    for (const checksumAlgorithm of ['CRC32', 'SHA256', 'none'] as const) {
      const s = s3.store(`sum-${checksumAlgorithm}`, { checksumAlgorithm });
      await s.put('x', Readable.from([body.subarray(0, 30_000), body.subarray(30_000)]));
      assert.ok(Buffer.from(await s.getBytes('x')).equals(body), checksumAlgorithm);
    }
  });

  test('conditional writes are enforced by the server: the adapter sends the headers and maps the refusals', async () => {
    assert.equal(store.conditionalWrites, true);
    const { etag } = await store.put('cond/k', enc('a'), { ifNoneMatch: '*' });
    await assert.rejects(store.put('cond/k', enc('b'), { ifNoneMatch: '*' }), PreconditionFailedError);
    await assert.rejects(store.put('cond/k', enc('b'), { ifMatch: '"0000"' }), PreconditionFailedError);
    await assert.rejects(store.put('cond/absent', enc('b'), { ifMatch: etag }), PreconditionFailedError);
    assert.equal(await store.head('cond/absent'), null);
    const { etag: next } = await store.put('cond/k', enc('c'), { ifMatch: etag });
    assert.notEqual(next, etag);
    assert.equal(dec(await store.getBytes('cond/k')), 'c');
    // No HEAD went before the writes: the server alone decided.
    assert.equal(s3.requests.filter((r) => r.startsWith('HEAD ') && r.includes('/cond/k')).length, 0);
  });

  test('conditional writes racing on one key: exactly one of 16 creates and one of 16 replaces wins', async () => {
    const creates = await Promise.allSettled(
      Array.from({ length: 16 }, (_, i) => store.put('race/k', enc(`create-${i}`), { ifNoneMatch: '*' })),
    );
    assert.equal(creates.filter((r) => r.status === 'fulfilled').length, 1);
    for (const r of creates) if (r.status === 'rejected') assert.ok(r.reason instanceof PreconditionFailedError, String(r.reason));
    const { etag } = (await store.head('race/k')) as { etag: string };
    const replaces = await Promise.allSettled(
      Array.from({ length: 16 }, (_, i) => store.put('race/k', enc(`replace-${i}`), { ifMatch: etag })),
    );
    const won = replaces.flatMap((r, i) => (r.status === 'fulfilled' ? [i] : []));
    assert.equal(won.length, 1);
    assert.equal(dec(await store.getBytes('race/k')), `replace-${won[0]}`);
  });

  test('a write whose body is still arriving holds up no reader: readers see the old version until it completes', { timeout: 60_000 }, async (t) => {
    const slow = s3.store('slow');
    await slow.put('k', enc('old'));
    const path = `/${s3.bucket}${new URL(slow.uri).pathname.replace(/\/?$/, '/')}k`;
    const request = httpRequest(`${s3.endpoint}${path}`, { method: 'PUT', headers: { 'content-length': 10 } });
    const answered = new Promise<number>((done, fail) => {
      request.on('response', (res) => {
        res.resume();
        done(res.statusCode ?? 0);
      });
      request.on('error', fail);
    });
    request.write('01234');
    while (!s3.requests.includes(`PUT ${path}`)) await new Promise((r) => setTimeout(r, 5)); // the server has it
    // A read held up by the write never returns: the test then fails on its timeout, and the unfinished write is dropped so the server can close.
    t.signal.addEventListener('abort', () => request.destroy());
    assert.equal(dec(await slow.getBytes('k')), 'old');
    request.end('56789');
    assert.equal(await answered, 200);
    assert.equal(dec(await slow.getBytes('k')), '0123456789');
  });

  test('a backend without conditional writes: declared with conditionalWrites false, the adapter checks by HEAD first', async () => {
    const plain = await startTestS3Server({ conditionalWrites: false });
    try {
      // Declared as enforcing them, the probe at the first conditional put finds out and refuses it.
      const trusting = plain.store('cond-trusting', { conditionalWrites: true });
      assert.deepEqual(await trusting.probeConditionalWrites(), { ifNoneMatch: false, ifMatch: null, multipart: false });
      await assert.rejects(
        trusting.put('k', enc('a'), { ifNoneMatch: '*' }),
        withCode('KVF_STORE_NO_CONDITIONAL_WRITES', trusting.uri, plain.endpoint, 'does not enforce conditional writes', 'If-None-Match: * and If-Match', 'KVFOLD_S3_CONDITIONAL_WRITES=false'),
      );
      // At start, the store check refuses it in one line, before any write of ours.
      await assert.rejects(checkStore(trusting), withCode('KVF_STORE_NO_CONDITIONAL_WRITES', trusting.uri, 'does not enforce conditional writes'));
      assert.equal(await trusting.head('k'), null, 'nothing was written');
      const leftovers: string[] = [];
      for await (const o of trusting.list('')) leftovers.push(o.key);
      assert.deepEqual(leftovers, [], 'the probe removes its object');
      // Declared honestly, the adapter refuses a sequential conflicting write itself.
      const honest = plain.store('cond');
      assert.equal(honest.conditionalWrites, false);
      const { etag } = await honest.put('k', enc('a'), { ifNoneMatch: '*' });
      await assert.rejects(honest.put('k', enc('b'), { ifNoneMatch: '*' }), PreconditionFailedError);
      await assert.rejects(honest.put('k', enc('b'), { ifMatch: '"0000"' }), PreconditionFailedError);
      await honest.put('k', enc('c'), { ifMatch: etag });
      assert.equal(dec(await honest.getBytes('k')), 'c');
    } finally {
      await plain.stop();
    }
  });

  test('the conditional-write probe learns what the server enforces and leaves nothing behind', async () => {
    const probed = s3.store('probe');
    const support = await probed.probeConditionalWrites();
    // The gateway (Ceph 16) compares If-Match with the bare hex only and completes multipart uploads whatever their conditions.
    const expected = testS3Kind === 'rgw' ? { ifNoneMatch: true, ifMatch: 'bare', multipart: false } : { ifNoneMatch: true, ifMatch: 'quoted', multipart: true };
    assert.deepEqual(support, expected);
    const keys: string[] = [];
    for await (const o of probed.list('')) keys.push(o.key);
    assert.deepEqual(keys, []);
  });

  test('the probe runs once per store, at its first conditional put, and not for plain puts', async () => {
    const probed = s3.store('probe-once');
    const probes = () => s3.requests.filter((r) => r.includes('/probe-once/.kvfold-probe-')).length;
    await probed.put('plain', enc('x'));
    assert.equal(probes(), 0);
    await Promise.all([probed.put('a', enc('a'), { ifNoneMatch: '*' }), probed.put('b', enc('b'), { ifNoneMatch: '*' })]);
    const once = probes();
    assert.ok(once > 0);
    const { etag } = await probed.put('c', enc('c'), { ifNoneMatch: '*' });
    await probed.put('c', enc('d'), { ifMatch: etag });
    assert.equal(probes(), once);
  });

  test('a conditional put larger than a part is refused when its condition fails, multipart or not', async () => {
    const big = s3.store('cond-big', { partSize: 5 * MiB });
    const body = randomBytes(6 * MiB);
    const { etag } = await big.put('k', body, { ifNoneMatch: '*' });
    assert.equal(etag, (await big.head('k'))?.etag);
    const before = s3.requests.length;
    await assert.rejects(big.put('k', randomBytes(6 * MiB), { ifNoneMatch: '*' }), PreconditionFailedError);
    await assert.rejects(
      big.put('k', Readable.from([randomBytes(3 * MiB), randomBytes(3 * MiB)]), { ifMatch: '"00000000000000000000000000000000"' }),
      PreconditionFailedError,
    );
    const { etag: next } = await big.put('k', Readable.from([body.subarray(0, 1), body.subarray(1)]), { ifMatch: etag });
    assert.ok(next.length > 0);
    assert.ok(Buffer.from(await big.getBytes('k')).equals(body));
    const parts = s3.requests.slice(before).filter((r) => r.includes('partNumber='));
    // Where CompleteMultipartUpload ignores conditions, a conditional put goes up as one PutObject.
    if (testS3Kind === 'rgw') assert.deepEqual(parts, []);
    else assert.ok(parts.length > 0);
  });

  test('an unknown access key is a credentials error naming the URI', async () => {
    const bad = s3.store('creds', { credentials: { accessKeyId: 'NOT-A-KEY', secretAccessKey: 'x' } });
    await assert.rejects(bad.check(), withCode('KVF_STORE_CREDENTIALS', bad.uri));
    await assert.rejects(bad.getBytes('any'), withCode('KVF_STORE_CREDENTIALS', bad.uri));
    await assert.rejects(bad.put('any', enc('x')), withCode('KVF_STORE_CREDENTIALS', bad.uri));
  });

  test('a missing bucket is reported by check()', async () => {
    const none = new S3ObjectStore('no-such-bucket', '', s3.settings);
    try {
      await assert.rejects(none.check(), withCode('KVF_STORE_NO_BUCKET', 'no-such-bucket'));
    } finally {
      none.destroy();
    }
  });

  // Fast: the test's own timeout is the bar (retries with backoff must not stretch a refused connection).
  test('a closed port fails fast as unreachable, naming the URI and the endpoint', { timeout: 10_000 }, async () => {
    const endpoint = `http://127.0.0.1:${await closedPort()}`;
    const dead = new S3ObjectStore('kvfold-test', 'p', { ...s3.settings, endpoint });
    try {
      await assert.rejects(dead.check(), withCode('KVF_STORE_UNREACHABLE', 's3://kvfold-test/p/', endpoint));
      await assert.rejects(dead.getBytes('k'), withCode('KVF_STORE_UNREACHABLE', 's3://kvfold-test/p/', endpoint));
      await assert.rejects(dead.put('k', enc('x')), withCode('KVF_STORE_UNREACHABLE', endpoint));
    } finally {
      dead.destroy();
    }
  });
});

test('part sizes grow with the body so that no upload needs more than S3’s 10,000 parts', () => {
  assert.equal(partSizeFor(undefined, 8 * MiB), 8 * MiB);
  assert.equal(partSizeFor(3 * 1024 * MiB, 8 * MiB), 8 * MiB, 'a 3 GiB file: 384 parts of 8 MiB');
  assert.equal(partSizeFor(8 * MiB * MAX_PARTS, 8 * MiB), 8 * MiB, 'exactly 10,000 parts');
  const huge = 200 * 1024 * MiB + 1; // 200 GiB and a byte
  const size = partSizeFor(huge, 8 * MiB);
  assert.equal(size % MiB, 0);
  assert.ok(Math.ceil(huge / size) <= MAX_PARTS && Math.ceil(huge / (size - MiB)) > MAX_PARTS, `${size} is the smallest whole-MiB part that fits`);
});
