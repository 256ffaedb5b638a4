/**
 * A batch whose model is not there is refused before anything happens: 400 KVF_ENQUEUE_MODEL naming
 * the model and what to do, no batch recorded, no job in the queue, no corpus uploaded. Local
 * folders (missing, empty, without a decoder) and `s3://` models (nothing pushed) are checked; a
 * real tiny-llama folder, on disk or copied into s3rver, is accepted.
 */
import assert from 'node:assert/strict';
import { readdir, readFile, mkdir, writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import { join, relative } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { tinyLlamaSpec, writeModelFolder } from '@kvfold/model-zoo';
import { startTestS3Server, type TestS3Server } from '@kvfold/storage/testing';
import { multipartBody, startTestApi } from './testing.ts';
import type { TestApi } from './testing.ts';

describe('model check on create (inject, real Redis, FsObjectStore, s3rver)', () => {
  let api: TestApi;
  let s3: TestS3Server;
  let model = '';

  before(async () => {
    s3 = await startTestS3Server();
    api = await startTestApi({ modelCheck: { storeOptions: { s3: s3.settings } } });
    model = join(api.dir, 'tiny');
    await writeModelFolder(tinyLlamaSpec(), model);
  });
  after(async () => {
    await api?.close();
    await s3?.stop();
  });

  const create = (spec: Record<string, unknown>) =>
    api.app.inject({ method: 'POST', url: '/v1/batches', headers: api.headers, payload: { corpus: [], ...spec } });
  const upload = (spec: Record<string, unknown>) => {
    const body = multipartBody({ 'a.txt': 'a document to fold\n' }, spec);
    return api.app.inject({ method: 'POST', url: '/v1/batches', headers: { ...api.headers, ...body.headers }, payload: body.payload });
  };
  async function assertNothingEnqueued(): Promise<void> {
    const counts = await api.queues.documents.getJobCounts();
    assert.deepEqual(Object.values(counts).filter((n) => n > 0), [], `jobs in the queue: ${JSON.stringify(counts)}`);
    assert.deepEqual((await api.registry.list({ limit: 10 })).ids, []);
    const stored: string[] = [];
    for await (const o of api.store.list('')) stored.push(o.key);
    assert.deepEqual(stored, [], 'nothing was uploaded to the store');
  }
  function assertRefused(res: { statusCode: number; json(): unknown }, pattern: RegExp): void {
    assert.equal(res.statusCode, 400);
    const { error } = res.json() as { error: { code: string; message: string } };
    assert.equal(error.code, 'KVF_ENQUEUE_MODEL');
    assert.match(error.message, pattern);
  }

  it('refuses a local model folder that does not exist, with or without an upload', async () => {
    const missing = join(api.dir, 'no-such-model');
    assertRefused(await upload({ model: missing }), new RegExp(`model ${missing} folder ${missing} does not exist here.*kvfold models build`));
    assertRefused(await create({ model: `file://${missing}`, corpus: ['corpora/x/index.json'] }), /does not exist here/);
    await assertNothingEnqueued();
  });

  it('refuses a folder without a decoder, naming what it lacks', async () => {
    const noOnnx = join(api.dir, 'no-onnx');
    await mkdir(noOnnx);
    for (const f of ['config.json', 'tokenizer.json', 'tokenizer_config.json']) await writeFile(join(noOnnx, f), await readFile(join(model, f)));
    assertRefused(await upload({ model: noOnnx }), /has no onnx\/model\.onnx \(expected the optimum export layout/);
    await mkdir(join(api.dir, 'empty'));
    assertRefused(await upload({ model: join(api.dir, 'empty') }), /is an empty folder/);
    await assertNothingEnqueued();
  });

  it('refuses an s3:// model with nothing pushed there', async () => {
    const uri = s3.uri('models/never-pushed');
    assertRefused(await upload({ model: uri }), new RegExp(`model ${uri} holds no objects; push the model folder there first \\(kvfold models push`));
    await assertNothingEnqueued();
  });

  // Without the early check the request never ends: the test's own timeout is the bar.
  it('refuses the model as soon as the spec part arrives, before the files that follow it', { timeout: 60_000 }, async () => {
    const address = await api.app.listen({ port: 0, host: '127.0.0.1' });
    const boundary = 'kvfold-early-spec';
    const missing = join(api.dir, 'not-built');
    const req = request(`${address}/v1/batches`, { method: 'POST', headers: { ...api.headers, 'content-type': `multipart/form-data; boundary=${boundary}` } });
    const answer = new Promise<{ status: number; body: string }>((resolve, reject) => {
      req.on('response', (res) => {
        let body = '';
        res.on('data', (c: Buffer) => {
          body += c;
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      });
      req.on('error', reject);
    });
    // The spec, then the start of a file part whose body never ends: only an early check can answer.
    req.write(`--${boundary}\r\nContent-Disposition: form-data; name="spec"\r\n\r\n${JSON.stringify({ model: missing })}\r\n`);
    req.write(`--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.txt"\r\n\r\nthe first bytes of a large file`);
    const { status, body } = await answer;
    req.destroy();
    assert.equal(status, 400, body);
    assert.equal(JSON.parse(body).error.code, 'KVF_ENQUEUE_MODEL');
    await assertNothingEnqueued();
  });

  it('accepts a real model folder on disk and the same folder in the S3 store', async () => {
    const local = await upload({ model });
    assert.equal(local.statusCode, 202, local.body);
    assert.equal(local.json().added, 2, 'one document and the batch parent');
    const store = s3.store('models/tiny');
    for (const f of await files(model)) await store.put(f, await readFile(join(model, f)));
    const remote = await upload({ model: s3.uri('models/tiny') });
    assert.equal(remote.statusCode, 202, remote.body);
    assert.equal(remote.json().added, 2);
    const counts = await api.queues.documents.getJobCounts();
    assert.equal(Object.values(counts).reduce((a, b) => a + b, 0), 2, `document jobs: ${JSON.stringify(counts)}`);
  });
});

async function files(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (e.isFile()) out.push(relative(dir, join(e.parentPath, e.name)).split('\\').join('/'));
  }
  return out;
}
