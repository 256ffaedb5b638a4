/** /healthz, /readyz, /metrics, /docs and /admin/queues. */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { FoldMetrics } from '@kvfold/jobs';
import { FsObjectStore } from '@kvfold/storage';
import { startTestApi } from './testing.ts';
import type { TestApi } from './testing.ts';

describe('operational routes', () => {
  let api: TestApi;
  before(async () => {
    api = await startTestApi();
  });
  after(() => api.close());

  it('healthz and readyz answer without a key', async () => {
    const health = await api.app.inject({ method: 'GET', url: '/healthz' });
    assert.deepEqual([health.statusCode, health.json()], [200, { status: 'ok' }]);
    const ready = await api.app.inject({ method: 'GET', url: '/readyz' });
    assert.deepEqual([ready.statusCode, ready.json()], [200, { status: 'ready', checks: { redis: 'ok', store: 'ok' } }]);
  });

  it('metrics expose HTTP, queue and fleet fold metrics written through FoldMetrics', async () => {
    const fold = new FoldMetrics(api.redis, { prefix: api.queues.prefix });
    await fold.recordStep(0.3, 64);
    await fold.recordCheckpoint(1024);
    await fold.recordDocument('completed');
    await api.app.inject({ method: 'GET', url: '/healthz' });
    const res = await api.app.inject({ method: 'GET', url: '/metrics' });
    assert.equal(res.statusCode, 200);
    assert.match(res.headers['content-type'] as string, /^text\/plain/);
    const text = res.body;
    assert.match(text, /kvfold_api_http_requests_total\{method="GET",route="\/healthz",status="200"\} \d+/);
    assert.match(text, /# TYPE kvfold_api_http_request_duration_seconds histogram/);
    assert.match(text, /kvfold_queue_jobs\{queue="kvfold-documents",state="waiting"\} 0/);
    assert.match(text, /kvfold_queue_jobs\{queue="kvfold-batches",state="waiting-children"\} 0/);
    assert.match(text, /# TYPE kvfold_fold_tokens_total counter\nkvfold_fold_tokens_total 64/);
    assert.match(text, /kvfold_checkpoint_bytes_total 1024/);
    assert.match(text, /kvfold_documents_total\{status="completed"\} 1/);
    assert.match(text, /# TYPE kvfold_fold_step_seconds histogram/);
    assert.match(text, /kvfold_fold_step_seconds_bucket\{le="0.25"\} 0\nkvfold_fold_step_seconds_bucket\{le="0.5"\} 1/);
    assert.match(text, /kvfold_fold_step_seconds_bucket\{le="\+Inf"\} 1\nkvfold_fold_step_seconds_sum 0.3\nkvfold_fold_step_seconds_count 1/);
  });

  it('serves a valid OpenAPI document with every route at /docs/json (keyed)', async () => {
    assert.equal((await api.app.inject({ method: 'GET', url: '/docs/json' })).statusCode, 401);
    const res = await api.app.inject({ method: 'GET', url: '/docs/json', headers: api.headers });
    assert.equal(res.statusCode, 200);
    const doc = res.json();
    assert.equal(doc.openapi, '3.0.3');
    assert.deepEqual(Object.keys(doc.paths).sort(), [
      '/healthz',
      '/metrics',
      '/readyz',
      '/v1/batches',
      '/v1/batches/recover',
      '/v1/batches/{id}',
      '/v1/batches/{id}/cancel',
      '/v1/batches/{id}/documents/{docId}',
      '/v1/batches/{id}/results',
      '/v1/batches/{id}/retry',
    ]);
    const create = doc.paths['/v1/batches'].post;
    const json = create.requestBody.content['application/json'].schema;
    assert.ok(json.properties.chunkSize && json.properties.model && json.properties.policy);
    assert.ok(create.requestBody.content['multipart/form-data'].schema.properties.spec);
    assert.ok(create.responses['202'].content['application/json'].schema.properties.report);
    assert.ok(doc.paths['/v1/batches/{id}'].get.responses['200'].content['application/json'].schema.properties.progress);
    const list = doc.paths['/v1/batches'].get;
    assert.deepEqual(list.parameters.map((p: { name: string; in: string }) => `${p.in}:${p.name}`).sort(), ['query:cursor', 'query:limit']);
    assert.ok(list.responses['200'].content['application/json'].schema.properties.nextCursor);
    assert.ok(doc.components.securitySchemes.apiKey);
    const ui = await api.app.inject({ method: 'GET', url: '/docs/', headers: api.headers });
    assert.equal(ui.statusCode, 200);
  });

  it('serves Bull Board at /admin/queues behind the key', async () => {
    assert.equal((await api.app.inject({ method: 'GET', url: '/admin/queues' })).statusCode, 401);
    const page = await api.app.inject({ method: 'GET', url: '/admin/queues', headers: api.headers });
    assert.equal(page.statusCode, 200);
    assert.match(page.body, /<html/i);
    const queues = await api.app.inject({ method: 'GET', url: '/admin/queues/api/queues', headers: api.headers });
    assert.equal(queues.statusCode, 200);
    assert.deepEqual(queues.json().queues.map((q: { name: string }) => q.name).sort(), ['kvfold-batches', 'kvfold-documents']);
  });
});

describe('readyz when the store is broken', () => {
  it('answers 503 naming the store', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'kvfold-api-broken-'));
    await writeFile(join(dir, 'file'), 'not a folder');
    const api = await startTestApi({ store: new FsObjectStore(join(dir, 'file', 'store')) });
    try {
      const res = await api.app.inject({ method: 'GET', url: '/readyz' });
      assert.equal(res.statusCode, 503);
      assert.equal(res.json().error.code, 'KVF_API_NOT_READY');
      assert.match(res.json().error.message, /store file:\/\/.*\/file\/store: .*ENOTDIR/);
    } finally {
      await api.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
