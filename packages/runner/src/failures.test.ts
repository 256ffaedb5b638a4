/**
 * The failure table, class by class, through processDocument() on real stores and models: a
 * permanent error fails the document at once with a stored result naming the document's code; a
 * transient one is thrown for the caller's retry and stores nothing.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { BatchSpec, type BatchSpecInput, type DocumentJob, type DocumentResult, documentResultKey, foldSettingsOf } from '@kvfold/contract';
import { recallSpec, writeModelFolder } from '@kvfold/model-zoo';
import { ingest, uploadCorpus } from '@kvfold/producer';
import { FsObjectStore, type ObjectStore } from '@kvfold/storage';
import { pino } from 'pino';
import { classifyFailure, DocumentErrorCode, FAILURE_TABLE } from './failures.ts';
import { ModelCache } from './model-cache.ts';
import { processDocument } from './process-document.ts';

const root = mkdtempSync(join(tmpdir(), 'kvfold-failures-'));
const models = new ModelCache({ cacheDir: join(root, 'cache') });
const log = pino({ level: 'silent' });
const model = join(root, 'recall');
let text = '';

before(async () => {
  await writeModelFolder(recallSpec(), model);
  // Words of the recall model's own vocabulary (fN, KEY, nN), so the text tokenizes without <unk>.
  text = Array.from({ length: 40 }, (_, i) => (i % 5 === 2 ? 'KEY' : `f${i % 7} n${i % 3}`)).join(' ');
});
after(async () => {
  await models.close();
  rmSync(root, { recursive: true, force: true });
});

let n = 0;
/** A one-document corpus in a fresh store, and its job as `kvfold run` would queue it. */
async function oneDocument(fold: Partial<Omit<BatchSpecInput, 'corpus'>> = {}): Promise<{ store: FsObjectStore; job: DocumentJob }> {
  const dir = join(root, `case-${++n}`);
  const file = join(root, `doc-${n}.txt`);
  writeFileSync(file, text);
  const store = new FsObjectStore(dir);
  const corpus = await uploadCorpus(store, ingest([file]));
  const spec = BatchSpec.parse({ model, queries: [], chunkSize: 16, ...fold, corpus: [corpus.indexKey] });
  const [d] = corpus.index.documents;
  assert.ok(d);
  const job: DocumentJob = { batchId: `b${createHash('sha256').update(String(n)).digest('hex').slice(0, 32)}`, docId: d.docId, corpusId: corpus.corpusId, shard: d.shard, paths: d.paths, bytes: d.bytes, fold: foldSettingsOf(spec) };
  return { store, job };
}

const control = { attempt: 1, writerId: 'test' };
const deps = (store: ObjectStore) => ({ store, models, log });

async function storedResult(store: ObjectStore, job: DocumentJob): Promise<DocumentResult | null> {
  if (!(await store.head(documentResultKey(job.batchId, job.docId)))) return null;
  return JSON.parse(new TextDecoder().decode(await store.getBytes(documentResultKey(job.batchId, job.docId))));
}

async function expectFailed(store: ObjectStore, job: DocumentJob, code: DocumentErrorCode, message: RegExp): Promise<void> {
  const outcome = await processDocument(job, deps(store), control);
  assert.equal(outcome.kind, 'failed');
  const stored = await storedResult(store, job);
  assert.equal(stored?.status, 'failed');
  assert.equal(stored?.error?.code, code);
  assert.match(stored?.error?.message ?? '', message);
}

test('the document folds when nothing is wrong (the cases below differ from it in one thing each)', async () => {
  const { store, job } = await oneDocument();
  const outcome = await processDocument(job, deps(store), control);
  assert.equal(outcome.kind, 'completed');
});

test('permanent: a shard whose bytes are not the document fails it as unreadable, once', async () => {
  const { store, job } = await oneDocument();
  const shard = new Uint8Array(await store.getBytes(job.shard.key));
  shard[job.shard.offset] = shard[job.shard.offset] === 0x41 ? 0x42 : 0x41;
  await store.put(job.shard.key, shard);
  await expectFailed(store, job, DocumentErrorCode.Unreadable, /hashing to .*the shard is corrupt/);
});

test('permanent: stored bytes that are not UTF-8 fail the document as unreadable (not as a TypeError retried)', async () => {
  const { store, job } = await oneDocument();
  const bytes = new Uint8Array([0x68, 0x69, 0xff, 0xfe, 0x21]);
  const docId = createHash('sha256').update(bytes).digest('hex');
  await store.put('corpora/foreign/shard-0.bin', bytes);
  const foreign: DocumentJob = { ...job, docId, shard: { key: 'corpora/foreign/shard-0.bin', offset: 0, length: bytes.length } };
  await expectFailed(store, foreign, DocumentErrorCode.Unreadable, /is not UTF-8/);
});

test('permanent: a model folder that is not there fails the document with the model named', async () => {
  const { store, job } = await oneDocument({ model: join(root, 'no-such-model') });
  await expectFailed(store, job, DocumentErrorCode.Model, /no-such-model/);
});

test('permanent: a policy the model refuses fails the document naming the policy (not retried on every attempt)', async () => {
  const scaled = join(root, 'recall-dynamic-rope');
  await writeModelFolder(recallSpec(), scaled);
  const config = JSON.parse(readFileSync(join(scaled, 'config.json'), 'utf8'));
  writeFileSync(join(scaled, 'config.json'), JSON.stringify({ ...config, rope_scaling: { rope_type: 'dynamic', factor: 2 } }));
  const { store, job } = await oneDocument({ model: scaled, policy: { kind: 'streaming', sink: 4, window: 16 } });
  await expectFailed(store, job, DocumentErrorCode.Policy, /policy .*streaming.*rope_scaling/);
});

test('transient: a shard missing from the store is thrown for a retry, and no result is stored', async () => {
  const { store, job } = await oneDocument();
  await store.delete(job.shard.key);
  await assert.rejects(processDocument(job, deps(store), control), { code: 'KVF_STORE_NOT_FOUND' });
  assert.equal(await storedResult(store, job), null);
  // The next attempt, with the shard back, folds it.
  const again = await oneDocument();
  assert.equal((await processDocument(again.job, deps(again.store), control)).kind, 'completed');
});

test('the table classifies every code it names, and an unknown code as transient', () => {
  assert.deepEqual(classifyFailure(Object.assign(new Error('x'), { code: 'KVF_CORPUS_DIGEST_MISMATCH' })), { kind: 'permanent', as: 'KVF_DOC_UNREADABLE' });
  assert.deepEqual(classifyFailure(Object.assign(new Error('x'), { code: 'KVF_STORE_UNREACHABLE' })), { kind: 'transient' });
  assert.deepEqual(classifyFailure(Object.assign(new Error('x'), { code: 'KVF_SOMETHING_NEW' })), { kind: 'transient' });
  assert.deepEqual(classifyFailure(new TypeError('not a coded error')), { kind: 'transient' });
  for (const code of Object.values(DocumentErrorCode)) assert.deepEqual(FAILURE_TABLE[code], { kind: 'permanent', as: code });
});
