/**
 * A store that refuses deletes (S3 credentials allowed to write but not to delete, as write-once
 * buckets are set up): the document's result is stored first, so a failed checkpoint cleanup is a
 * logged warning, counted, and the document stays completed. The store is real S3 protocol: s3rver
 * behind an HTTP hop that answers DeleteObject and DeleteObjects with 403 AccessDenied, as S3 does
 * for a policy without s3:DeleteObject; everything else passes through unchanged.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { after, before, test } from 'node:test';
import { DocumentResult, documentResultsPrefix } from '@kvfold/contract';
import { tinyLlamaSpec, writeModelFolder } from '@kvfold/model-zoo';
import { startTestS3Server, type TestS3Server } from '@kvfold/storage/testing';
import { pino } from 'pino';
import { ModelCache } from './model-cache.ts';
import { runLocal } from './run-local.ts';

const root = mkdtempSync(join(tmpdir(), 'kvfold-cleanup-'));
const models = new ModelCache({ cacheDir: join(root, 'cache') });
let s3: TestS3Server;
let denyDeletes: Server;
let denied = 0;

before(async () => {
  s3 = await startTestS3Server();
  const upstream = new URL(s3.endpoint);
  denyDeletes = createServer((req, res) => {
    if (req.method === 'DELETE' || (req.method === 'POST' && /[?&]delete(=|&|$)/.test(req.url ?? ''))) {
      denied++;
      req.resume();
      res.writeHead(403, { 'content-type': 'application/xml' });
      res.end('<?xml version="1.0" encoding="UTF-8"?><Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>');
      return;
    }
    const forward = request({ host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers: req.headers }, (up) => {
      res.writeHead(up.statusCode ?? 502, up.headers);
      up.pipe(res);
    });
    forward.on('error', (err) => res.destroy(err));
    req.pipe(forward);
  });
  await new Promise<void>((resolve) => denyDeletes.listen(0, '127.0.0.1', resolve));
});
after(async () => {
  await models.close();
  await new Promise((resolve) => denyDeletes?.close(resolve));
  await s3?.stop();
  rmSync(root, { recursive: true, force: true });
});

test('a checkpoint the store will not delete is a warning: the document stays completed', async () => {
  const model = join(root, 'tiny');
  await writeModelFolder(tinyLlamaSpec(), model);
  writeFileSync(join(root, 'doc.txt'), 'Every chunk continues where the last one stopped. '.repeat(6));
  const { port } = denyDeletes.address() as AddressInfo;
  const store = s3.store('cleanup', { endpoint: `http://127.0.0.1:${port}`, maxAttempts: 1 });
  const logged: { level: number; msg: string; docId?: string; err?: { message: string } }[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString('utf8').split('\n').filter(Boolean)) logged.push(JSON.parse(line));
      done();
    },
  });
  const run = await runLocal({
    inputs: [join(root, 'doc.txt')],
    spec: { model, queries: [], chunkSize: 16, checkpointEvery: 2 },
    store,
    models,
    log: pino({ level: 'warn' }, sink),
  });
  assert.ok(denied > 0, 'the store was asked to delete the checkpoint');
  assert.equal(run.completed, 1);
  assert.equal(run.failed, 0);
  assert.equal(run.cleanupWarnings, 1);
  assert.equal(run.results?.completed, 1);
  const keys = await collect(store.list(documentResultsPrefix(run.batchId)));
  assert.equal(keys.length, 1);
  const result = DocumentResult.parse(JSON.parse(new TextDecoder().decode(await store.getBytes(keys[0] as string))));
  assert.equal(result.status, 'completed');
  assert.ok((await collect(store.list('checkpoints/'))).length > 0, 'the checkpoint it could not delete is still there');
  const warning = logged.find((l) => /checkpoint could not be cleaned up/.test(l.msg));
  assert.ok(warning, `a warning was logged; got ${JSON.stringify(logged.map((l) => l.msg))}`);
  assert.equal(warning.level, 40);
  assert.equal(warning.docId, result.docId);
  assert.match(warning.err?.message ?? '', /AccessDenied/);
});

async function collect(it: AsyncIterable<{ key: string }>): Promise<string[]> {
  const keys: string[] = [];
  for await (const o of it) keys.push(o.key);
  return keys;
}
