/** The API over an S3-protocol store (s3rver on loopback): upload, status, one document's result. */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { DocumentJob, DocumentResult, documentResultKey } from '@kvfold/contract';
import { startTestS3Server } from '@kvfold/storage/testing';
import type { TestS3Server } from '@kvfold/storage/testing';
import { rawTar } from '@kvfold/producer/testing';
import { multipartBody, startTestApi } from './testing.ts';
import type { TestApi } from './testing.ts';

describe('API on an S3 store (s3rver)', () => {
  let s3: TestS3Server;
  let api: TestApi;
  before(async () => {
    s3 = await startTestS3Server();
    api = await startTestApi({ store: s3.store('kvfold/') });
  });
  after(async () => {
    await api.close();
    await s3.stop();
  });

  it('uploads a corpus into the bucket, enqueues it and serves a result written there', async () => {
    const body = multipartBody({ 'docs.tar.gz': rawTar([{ path: 'one.txt', body: 'first\n' }, { path: 'two.txt', body: 'second\n' }], true) }, { model: 'file:///m' });
    const res = await api.app.inject({ method: 'POST', url: '/v1/batches', headers: { ...api.headers, ...body.headers }, payload: body.payload });
    assert.equal(res.statusCode, 202, res.body);
    const { id, documents } = res.json();
    assert.equal(documents, 2);
    assert.ok(s3.requests.some((r) => r.startsWith('PUT /kvfold-test/kvfold/corpora/')), 'shards and index went to the bucket');
    assert.ok(await api.store.head(`batches/${id}/spec.json`));

    const [job] = await api.queues.documents.getJobs(['prioritized', 'waiting'], 0, 0);
    assert.ok(job);
    const data = DocumentJob.parse(job.data);
    const result = DocumentResult.parse({
      batchId: id,
      docId: data.docId,
      paths: data.paths,
      status: 'failed',
      tokens: 0,
      steps: 0,
      chunkSize: 256,
      timings: { loadMs: 0, foldMs: 0, generateMs: 0, totalMs: 0, tokensPerSecond: 0 },
      kvBytes: 0,
      answers: [],
      resumedFromStep: 0,
      checkpoint: { segments: 0, bytes: 0 },
      attempts: 3,
      error: { code: 'KVF_MODEL_NOT_FOUND', message: 'model folder /m does not exist' },
    });
    await api.store.put(documentResultKey(id, data.docId), new Uint8Array(Buffer.from(JSON.stringify(result))));
    const doc = await api.app.inject({ method: 'GET', url: `/v1/batches/${id}/documents/${data.docId}`, headers: api.headers });
    assert.deepEqual([doc.statusCode, doc.json()], [200, result]);
    const lines = await api.app.inject({ method: 'GET', url: `/v1/batches/${id}/results`, headers: api.headers });
    assert.deepEqual(JSON.parse(lines.body), result);
    const ready = await api.app.inject({ method: 'GET', url: '/readyz' });
    assert.equal(ready.statusCode, 200);
  });
});
