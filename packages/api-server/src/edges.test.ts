/**
 * The API's edges through inject() on real Redis: multipart bodies the parser cannot read (no
 * boundary, cut short) and a second `spec` field answer 400; wrong API keys are limited per client
 * address (429 with Retry-After, right keys included, until the window ends); the 414, bad-URL and
 * Bull Board 401 answers keep the `{error: {code, message}}` shape; the OpenAPI document explains
 * the create answer's `added`. The packages' input errors answer 400 with their own codes.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ContractErrorCode } from '@kvfold/contract';
import { JobsErrorCode } from '@kvfold/jobs';
import { ProducerErrorCode } from '@kvfold/producer';
import { StoreErrorCode } from '@kvfold/storage';
import { ApiErrorCode, classify } from './errors.ts';
import { multipartBody, startTestApi } from './testing.ts';
import type { TestApi } from './testing.ts';

const spec = { model: 'file:///models/tiny' };
type Answer = { statusCode: number; headers: Record<string, unknown>; json(): unknown; body: string };
const errorOf = (res: Answer) => {
  const body = res.json() as { error: { code: string; message: string } };
  assert.deepEqual(Object.keys(body), ['error'], res.body);
  assert.deepEqual(Object.keys(body.error).sort(), ['code', 'message'], res.body);
  return body.error;
};

describe('API edges', () => {
  let api: TestApi;
  before(async () => {
    api = await startTestApi({ limits: { authFailuresMax: 3, authFailureWindowMs: 60_000 } });
  });
  after(() => api.close());
  const post = (payload: Buffer, contentType: string) =>
    api.app.inject({ method: 'POST', url: '/v1/batches', headers: { ...api.headers, 'content-type': contentType }, payload });

  it('answers 400 for a multipart body without a boundary or cut short, and enqueues nothing', async () => {
    const body = multipartBody({ 'a.txt': 'a document that is long enough to cut in the middle\n' }, spec);
    const type = body.headers['content-type'] as string;
    const noBoundary = await post(body.payload, 'multipart/form-data');
    assert.equal(noBoundary.statusCode, 400, noBoundary.body);
    assert.match(errorOf(noBoundary).message, /^multipart body cannot be read \(.*[Bb]oundary.*\): send a complete multipart\/form-data body/);
    // Cut inside the file part's headers, inside its content, and in the closing boundary.
    for (const cut of [body.payload.indexOf('filename='), body.payload.indexOf('long enough'), body.payload.length - 10]) {
      assert.ok(cut > 0);
      const truncated = await post(body.payload.subarray(0, cut), type);
      assert.equal(truncated.statusCode, 400, `cut at ${cut}: ${truncated.body}`);
      const error = errorOf(truncated);
      assert.equal(error.code, 'KVF_API_BAD_REQUEST');
      assert.match(error.message, /^multipart body cannot be read/);
    }
    const counts = await api.queues.documents.getJobCounts();
    assert.deepEqual(Object.values(counts).filter((n) => n > 0), []);
  });

  it('refuses a multipart body with two spec fields instead of taking the last', async () => {
    const body = multipartBody({ 'a.txt': 'one document\n' }, spec);
    const boundary = (body.headers['content-type'] as string).split('boundary=')[1];
    const first = Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="spec"\r\n\r\n${JSON.stringify({ ...spec, chunkSize: 8 })}\r\n`);
    const res = await post(Buffer.concat([first, body.payload]), body.headers['content-type'] as string);
    assert.equal(res.statusCode, 400, res.body);
    assert.deepEqual(errorOf(res), { code: 'KVF_API_BAD_REQUEST', message: 'spec: the form has more than one "spec" field; send the batch spec once' });
    assert.deepEqual((await api.registry.list({ limit: 10 })).ids, []);
  });

  it('limits wrong API keys per address: 429 with Retry-After once over; a right key still goes through; other addresses go on', async () => {
    const url = `/v1/batches/b${'0'.repeat(32)}`;
    const from = (remoteAddress: string, key: string) => api.app.inject({ method: 'GET', url, remoteAddress, headers: { 'x-api-key': key } });
    for (let i = 0; i < 3; i++) assert.equal((await from('10.0.0.7', `guess-${i}`)).statusCode, 401, `guess ${i}`);
    const limited = await from('10.0.0.7', 'guess-3');
    assert.equal(limited.statusCode, 429, limited.body);
    const retryAfter = Number(limited.headers['retry-after']);
    assert.ok(retryAfter >= 1 && retryAfter <= 60, `Retry-After ${limited.headers['retry-after']}`);
    const error = errorOf(limited);
    assert.equal(error.code, 'KVF_API_RATE_LIMITED');
    assert.match(error.message, /^too many wrong API keys from 10\.0\.0\.7: 3 within 60 s \(KVFOLD_API_AUTH_FAILURES\); retry in \d+ s/);
    assert.equal((await from('10.0.0.7', 'test-key-0123456789')).statusCode, 404, 'a right key goes through while the address is locked');
    assert.equal((await from('10.0.0.7', 'guess-4')).statusCode, 429, 'a wrong one is still refused');
    assert.equal((await from('10.0.0.8', 'test-key-0123456789')).statusCode, 404, 'another address is not affected');
    assert.equal((await from('10.0.0.8', 'guess')).statusCode, 401);
    const missing = await api.app.inject({ method: 'GET', url, remoteAddress: '10.0.0.9' });
    assert.equal(missing.statusCode, 401, 'a request without a key is not a guess');
  });

  it('refuses an upload that declares more bytes than the limit with 413 before reading its body', async () => {
    const { request } = await import('node:http');
    const address = await api.app.listen({ port: 0, host: '127.0.0.1' });
    const started = performance.now();
    const answer = await new Promise<{ status: number; body: string }>((done, fail) => {
      const req = request(`${address}/v1/batches`, {
        method: 'POST',
        headers: { ...api.headers, 'content-type': 'multipart/form-data; boundary=x', 'content-length': String(2 * 1024 ** 3) },
      });
      req.on('response', (res) => {
        let body = '';
        res.on('data', (c) => (body += c));
        res.on('end', () => done({ status: res.statusCode ?? 0, body }));
      });
      req.on('error', fail);
      req.write('--x\r\n'); // a few bytes of the 2 GiB declared; the rest never comes
    });
    assert.equal(answer.status, 413, answer.body);
    assert.ok(performance.now() - started < 5000, 'answered without waiting for the body');
    const error = JSON.parse(answer.body).error;
    assert.equal(error.code, 'KVF_API_BODY_TOO_LARGE');
    assert.match(error.message, /^the upload declares 2147483648 bytes, over the limit of \d+ bytes of files \(KVFOLD_API_UPLOAD_LIMIT\)/);
  });

  it('answers an over-long path parameter (414) and a bad URL (400) in the error shape', async () => {
    const long = await api.app.inject({ method: 'GET', url: `/v1/batches/b${'0'.repeat(300)}`, headers: api.headers });
    assert.equal(long.statusCode, 414);
    assert.equal(errorOf(long).code, 'KVF_API_URI_TOO_LONG');
    const bad = await api.app.inject({ method: 'GET', url: '/v1/batches/%zz', headers: api.headers });
    assert.equal(bad.statusCode, 400);
    assert.deepEqual(errorOf(bad), { code: 'KVF_API_BAD_REQUEST', message: 'the request path is not a valid URL (bad percent-encoding); encode it with encodeURIComponent' });
  });

  it('answers the queue dashboard without a key, or with a wrong one, in the error shape', async () => {
    for (const path of ['/admin/queues', '/admin/queues/api/queues']) {
      const none = await api.app.inject({ method: 'GET', url: path });
      assert.equal(none.statusCode, 401, path);
      assert.deepEqual(errorOf(none), { code: 'KVF_API_UNAUTHORIZED', message: 'missing API key: send it as x-api-key or Authorization: Bearer <key>' });
      const wrong = await api.app.inject({ method: 'GET', url: path, remoteAddress: '10.0.1.1', headers: { 'x-api-key': 'nope' } });
      assert.equal(wrong.statusCode, 401, path);
      assert.equal(errorOf(wrong).code, 'KVF_API_UNAUTHORIZED');
    }
    const open = await api.app.inject({ method: 'GET', url: '/admin/queues/api/queues', headers: api.headers });
    assert.equal(open.statusCode, 200, open.body);
  });

  it('documents what added counts in the OpenAPI document', async () => {
    const doc = (await api.app.inject({ method: 'GET', url: '/docs/json', headers: api.headers })).json() as {
      paths: Record<string, { post?: { responses: Record<string, { content: Record<string, { schema: { properties: Record<string, { description?: string }> } }> }> } }>;
    };
    const created = doc.paths['/v1/batches']?.post?.responses['202']?.content['application/json']?.schema;
    assert.match(created?.properties.added?.description ?? '', /one per document plus the batch job when the batch is new; 0 when the same batch/);
  });
});

describe('API wrong-key window', () => {
  let api: TestApi;
  before(async () => {
    api = await startTestApi({ limits: { authFailuresMax: 1, authFailureWindowMs: 300 } });
  });
  after(() => api.close());

  it('lets an address in again once its window has ended', async () => {
    const url = `/v1/batches/b${'0'.repeat(32)}`;
    const guess = () => api.app.inject({ method: 'GET', url, headers: { 'x-api-key': 'guess' } });
    assert.equal((await guess()).statusCode, 401);
    assert.equal((await guess()).statusCode, 429);
    assert.equal((await api.app.inject({ method: 'GET', url, headers: api.headers })).statusCode, 404, 'the right key is let in meanwhile');
    // The window is the bar; the test's own timeout bounds the wait.
    let status = 429;
    while (status === 429) {
      await new Promise((r) => setTimeout(r, 50));
      status = (await guess()).statusCode;
    }
    assert.equal(status, 401, 'a wrong key is answered as wrong again');
  });
});

describe('API behind a trusted proxy', () => {
  let api: TestApi;
  before(async () => {
    api = await startTestApi({ limits: { authFailuresMax: 2, authFailureWindowMs: 60_000 }, trustProxy: ['10.1.0.1'] });
  });
  after(() => api.close());

  it('counts wrong keys per client address the trusted proxy reports, not per the proxy', async () => {
    const url = `/v1/batches/b${'0'.repeat(32)}`;
    const via = (remoteAddress: string, client: string) =>
      api.app.inject({ method: 'GET', url, remoteAddress, headers: { 'x-api-key': 'guess', 'x-forwarded-for': client } });
    for (let i = 0; i < 2; i++) assert.equal((await via('10.1.0.1', '203.0.113.5')).statusCode, 401);
    const limited = await via('10.1.0.1', '203.0.113.5');
    assert.equal(limited.statusCode, 429);
    assert.match(errorOf(limited).message, /from 203\.0\.113\.5:/);
    assert.equal((await via('10.1.0.1', '203.0.113.6')).statusCode, 401, 'another client behind the same proxy is not affected');
    // An untrusted peer cannot choose its address: its own is counted.
    for (let i = 0; i < 2; i++) assert.equal((await via('10.9.9.9', `198.51.100.${i}`)).statusCode, 401);
    assert.equal((await via('10.9.9.9', '198.51.100.7')).statusCode, 429);
  });
});

describe('error classification', () => {
  it('answers 400 with their own code for the packages\' input errors, and 500 for the rest', () => {
    const coded = (code: string) => Object.assign(new Error(`failed with ${code}`), { code });
    for (const code of [ContractErrorCode.InvalidInput, JobsErrorCode.InvalidInput, StoreErrorCode.BadKey, ProducerErrorCode.InputNotFound, ProducerErrorCode.DocumentTooLong, ProducerErrorCode.NoDocuments, ProducerErrorCode.EnqueueModel]) {
      assert.deepEqual(classify(coded(code)), { status: 400, code, message: `failed with ${code}` });
    }
    // The batch routes answer these 404 and 409 themselves; a store or Redis fault is the server's.
    for (const code of [ProducerErrorCode.BatchUnknown, ProducerErrorCode.BatchNotEnded, StoreErrorCode.Io, 'KVF_SOMETHING_ELSE']) {
      assert.equal(classify(coded(code)).status, 500, code);
      assert.equal(classify(coded(code)).code, ApiErrorCode.Internal);
    }
  });
});
