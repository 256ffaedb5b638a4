/**
 * `checkStore` at start: an S3 store that fails for a reason that may pass (a 5xx, a server still
 * starting) is tried again with backoff; one that cannot pass (wrong credentials) fails at once;
 * the last error names the endpoint, the bucket and what the server answered. The faults come from
 * a proxy on loopback in front of the test S3 server, answering chosen requests itself.
 */
import assert from 'node:assert/strict';
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, test } from 'node:test';
import { checkStore, openStore } from './open-store.ts';
import { startTestS3Server, type TestS3Server } from './testing.ts';

let s3: TestS3Server;
let proxy: Server;
let endpoint: string;
/** Answers the proxy gives itself, one per request, before it forwards again. */
let faults: number[] = [];
let requests = 0;

before(async () => {
  s3 = await startTestS3Server();
  const target = new URL(s3.endpoint);
  proxy = createServer((req, res) => {
    requests++;
    const status = faults.shift();
    if (status !== undefined) {
      req.resume();
      res.writeHead(status, { 'content-type': 'application/xml' }).end(status === 403 ? '<Error><Code>AccessDenied</Code></Error>' : '');
      return;
    }
    const forward = request({ host: target.hostname, port: target.port, method: req.method, path: req.url, headers: req.headers }, (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(res);
    });
    req.pipe(forward);
  });
  await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r));
  endpoint = `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`;
});
after(async () => {
  await new Promise((r) => proxy.close(r));
  await s3.stop();
});

const store = () => openStore(s3.uri('check/'), { s3: { ...s3.settings, endpoint } });
const SHORT = [10, 20, 40];

test('a store answering 503 twice, then itself, passes the check on the third try', async () => {
  faults = [503, 503];
  requests = 0;
  await checkStore(store(), SHORT);
  assert.equal(faults.length, 0, 'both 503s were answered');
  assert.ok(requests >= 3, `${requests} requests: two refused, then the bucket and the probe of conditional writes`);
});

test('a store that keeps answering 500 fails after every retry, naming the endpoint, the bucket and the answer', async () => {
  faults = [500, 500, 500, 500, 500];
  requests = 0;
  await assert.rejects(checkStore(store(), SHORT), (err: Error & { code?: string }) => {
    assert.equal(err.code, 'KVF_STORE_IO');
    assert.match(err.message, new RegExp(`the server at ${endpoint} answered HTTP 500`));
    assert.match(err.message, /for bucket \S+/);
    return true;
  });
  assert.equal(requests, 4, 'the first try and three retries');
  faults = [];
});

test('wrong credentials fail at once: a retry cannot mend them', async () => {
  faults = [403, 403, 403, 403];
  requests = 0;
  await assert.rejects(checkStore(store(), SHORT), { code: 'KVF_STORE_CREDENTIALS' });
  assert.equal(requests, 1);
  faults = [];
});
