/** Authentication, validation, limits and error shapes, through inject() on real Redis and a real store. */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startTestApi } from './testing.ts';
import type { TestApi } from './testing.ts';

const spec = { corpus: ['corpora/x/index.json'], model: 'file:///models/tiny' };

describe('API guards', () => {
  let api: TestApi;
  before(async () => {
    api = await startTestApi({ limits: { bodyBytes: 2048, rateLimitMax: 1000 } });
  });
  after(() => api.close());

  it('answers 401 without a key, with a wrong key, and accepts x-api-key or Bearer', async () => {
    const none = await api.app.inject({ method: 'GET', url: `/v1/batches/b${'0'.repeat(32)}` });
    assert.equal(none.statusCode, 401);
    assert.equal(none.json().error.code, 'KVF_API_UNAUTHORIZED');
    assert.match(none.json().error.message, /missing API key/);
    const wrong = await api.app.inject({ method: 'GET', url: `/v1/batches/b${'0'.repeat(32)}`, headers: { 'x-api-key': 'nope' } });
    assert.equal(wrong.statusCode, 401);
    assert.match(wrong.json().error.message, /not accepted/);
    const bearer = await api.app.inject({ method: 'GET', url: `/v1/batches/b${'0'.repeat(32)}`, headers: { authorization: 'Bearer second-key' } });
    assert.equal(bearer.statusCode, 404);
  });

  it('answers 400 naming the bad fields of a malformed spec', async () => {
    const res = await api.app.inject({ method: 'POST', url: '/v1/batches', headers: api.headers, payload: { ...spec, chunkSize: 0, polcy: 'x' } });
    assert.equal(res.statusCode, 400);
    assert.equal(res.json().error.code, 'KVF_API_BAD_REQUEST');
    assert.match(res.json().error.message, /chunkSize: must be an integer >= 1/);
    assert.match(res.json().error.message, /polcy: unknown field/);
  });

  it('answers 400 for broken JSON and for a corpus that is not in the store', async () => {
    const broken = await api.app.inject({ method: 'POST', url: '/v1/batches', headers: { ...api.headers, 'content-type': 'application/json' }, payload: '{"corpus": [' });
    assert.equal(broken.statusCode, 400);
    assert.equal(broken.json().error.code, 'KVF_API_BAD_REQUEST');
    const missing = await api.app.inject({ method: 'POST', url: '/v1/batches', headers: api.headers, payload: spec });
    assert.equal(missing.statusCode, 400);
    assert.match(missing.json().error.message, /corpus: no corpus index corpora\/x\/index.json in the store/);
  });

  it('answers 413 for a JSON body over the limit', async () => {
    const res = await api.app.inject({ method: 'POST', url: '/v1/batches', headers: api.headers, payload: { ...spec, queries: ['x'.repeat(4096)] } });
    assert.equal(res.statusCode, 413);
    assert.equal(res.json().error.code, 'KVF_API_BODY_TOO_LARGE');
  });

  it('answers 415 for a body that is neither JSON nor multipart', async () => {
    const res = await api.app.inject({ method: 'POST', url: '/v1/batches', headers: { ...api.headers, 'content-type': 'text/plain' }, payload: 'hello' });
    assert.equal(res.statusCode, 415);
    assert.equal(res.json().error.code, 'KVF_API_UNSUPPORTED_MEDIA');
  });

  it('answers 404 for unknown batches, documents and routes', async () => {
    const unknown = await api.app.inject({ method: 'GET', url: `/v1/batches/b${'0'.repeat(32)}`, headers: api.headers });
    assert.equal(unknown.statusCode, 404);
    assert.deepEqual(unknown.json(), { error: { code: 'KVF_API_NOT_FOUND', message: `no batch b${'0'.repeat(32)}` } });
    for (const url of ['/v1/batches/not-an-id', `/v1/batches/b${'0'.repeat(32)}/results`, `/v1/batches/b${'0'.repeat(32)}/documents/${'a'.repeat(64)}`, '/v2/nothing']) {
      const res = await api.app.inject({ method: 'GET', url, headers: api.headers });
      assert.equal(res.statusCode, 404, url);
      assert.equal(res.json().error.code, 'KVF_API_NOT_FOUND', url);
    }
    const cancel = await api.app.inject({ method: 'POST', url: `/v1/batches/b${'0'.repeat(32)}/cancel`, headers: api.headers });
    assert.equal(cancel.statusCode, 404);
  });
});

describe('API rate limit', () => {
  let api: TestApi;
  before(async () => {
    api = await startTestApi({ limits: { rateLimitMax: 3, rateLimitWindowMs: 60_000 } });
  });
  after(() => api.close());

  it('answers 429 past the limit per key, and never limits the probes', async () => {
    const url = `/v1/batches/b${'0'.repeat(32)}`;
    for (let i = 0; i < 3; i++) assert.equal((await api.app.inject({ method: 'GET', url, headers: api.headers })).statusCode, 404);
    const limited = await api.app.inject({ method: 'GET', url, headers: api.headers });
    assert.equal(limited.statusCode, 429);
    assert.equal(limited.json().error.code, 'KVF_API_RATE_LIMITED');
    assert.match(limited.json().error.message, /rate limit exceeded: 3 requests per/);
    // Another key has its own budget.
    assert.equal((await api.app.inject({ method: 'GET', url, headers: { 'x-api-key': 'second-key' } })).statusCode, 404);
    for (let i = 0; i < 5; i++) assert.equal((await api.app.inject({ method: 'GET', url: '/healthz' })).statusCode, 200);
  });
});
