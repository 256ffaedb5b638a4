/**
 * `kvfold run`, the embedded default, as a user runs it: a corpus of a directory and an archive,
 * folded in-process on a filesystem store; a document over the token limit fails alone (exit 1) and a
 * rerun folds only it again (or nothing, with --keep-failures); a run whose model folder is missing
 * fails every document and a rerun once the model is there completes them; an escaping archive entry
 * is refused alone; a model pushed to an S3 store serves the
 * same results as its local folder.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { startTestS3Server, type TestS3Server, TEST_S3_CREDENTIALS } from '@kvfold/storage/testing';
import { kvfold, type RunResult, startKvfold } from './test-support.ts';

const root = mkdtempSync(join(tmpdir(), 'kvfold-run-test-'));
const model = join(root, 'tiny');
const corpus = join(root, 'corpus');
const archive = join(root, 'evil.tgz');
let s3: TestS3Server;

interface Summary {
  batchId: string;
  documents: number;
  completed: number;
  failed: number;
  foldedNow: number;
  failedNow: number;
  skipped: number;
  retried: number;
  stopped: boolean;
  refusedEntries: { entry: string; reason: string }[];
}
interface ResultLine {
  docId: string;
  paths: string[];
  status: string;
  tokens: number;
  steps: number;
  answers: { tokenIds: number[] }[];
  error?: { code: string; message: string };
}

const json = <T>(r: RunResult, code = 0): T => {
  assert.equal(r.code, code, r.stderr);
  return JSON.parse(r.stdout) as T;
};
const lines = (file: string) => readFileSync(file, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as ResultLine);
const runArgs = (store: string, out: string, modelRef = model, ...extra: string[]) => [
  'run', corpus, archive, '--model', modelRef, '--store', store, '--out', out, '--chunk-size', '32',
  '--ask', 'What is carried?', '--max-new-tokens', '4', '--max-tokens-per-document', '600', '--json', ...extra,
];

before(async () => {
  assert.equal((await kvfold(['models', 'build', 'tiny-llama', '--out', model])).code, 0);
  mkdirSync(join(corpus, 'notes'), { recursive: true });
  writeFileSync(join(corpus, 'a.md'), 'The cache is carried from chunk to chunk. '.repeat(8));
  writeFileSync(join(corpus, 'notes', 'b.txt'), 'Positions continue where the previous chunk stopped. '.repeat(6));
  // 600 bytes: no bound proves it over the limit of 600 before it is tokenized (tiny-llama's
  // vocabulary is its bytes), and with BOS it has 601 tokens, so the worker fails it.
  writeFileSync(join(corpus, 'long.txt'), 'This document is over the token limit. '.repeat(15).padEnd(600, '.'));
  const staging = join(root, 'staging');
  mkdirSync(staging);
  writeFileSync(join(staging, 'inside.txt'), 'An archive entry that stays inside its root. '.repeat(5));
  writeFileSync(join(staging, 'escape.txt'), 'An entry that tries to leave its root.');
  execFileSync('tar', ['czf', archive, '-C', staging, 'inside.txt']);
  execFileSync('tar', ['czf', join(root, 'escape.tgz'), '-C', staging, '--transform', 's,^,../,', 'escape.txt']);
  // One archive holding both: the good entry and the escaping one.
  execFileSync('tar', ['czf', archive, '-C', staging, 'inside.txt', '--transform', 's,^escape,../escape,', 'escape.txt']);
  s3 = await startTestS3Server();
});
after(async () => {
  await s3?.stop();
  rmSync(root, { recursive: true, force: true });
});

test('run folds every document; a long one fails alone, exits 1, and is retried by a rerun', async () => {
  const store = join(root, 'store');
  const out = join(root, 'results.jsonl');
  const firstRun = await kvfold(runArgs(store, out));
  const first = json<Summary>(firstRun, 1);
  assert.match(firstRun.stderr, /kvfold: 1 of 4 documents failed/);
  assert.equal(first.documents, 4);
  assert.equal(first.completed, 3);
  assert.equal(first.failed, 1);
  assert.equal(first.foldedNow, 3);
  assert.equal(first.failedNow, 1);
  assert.equal(first.retried, 0);
  assert.equal(first.stopped, false);
  assert.deepEqual(first.refusedEntries.map((r) => r.entry), ['../escape.txt']);
  const results = lines(out);
  assert.equal(results.length, 4);
  const failed = results.filter((r) => r.status === 'failed');
  assert.equal(failed.length, 1);
  assert.deepEqual(failed[0]?.paths.map((p) => p.split('/').at(-1)), ['long.txt']);
  assert.equal(failed[0]?.error?.code, 'KVF_DOC_TOO_LONG');
  assert.match(failed[0]?.error?.message ?? '', /over the batch's limit of 600/);
  for (const r of results.filter((x) => x.status === 'completed')) {
    assert.equal(r.steps, Math.ceil(r.tokens / 32));
    assert.equal(r.answers[0]?.tokenIds.length, 4);
  }

  const again = json<Summary>(await kvfold(runArgs(store, join(root, 'again.jsonl'))), 1);
  assert.equal(again.batchId, first.batchId);
  assert.equal(again.foldedNow, 0, 'completed documents are not folded again');
  assert.equal(again.failedNow, 1, 'the failed document is tried again');
  assert.equal(again.retried, 1);
  assert.equal(again.skipped, 3);
  assert.equal(again.completed, 3);

  const kept = json<Summary>(await kvfold(runArgs(store, join(root, 'kept.jsonl'), model, '--keep-failures')), 1);
  assert.equal(kept.foldedNow + kept.failedNow + kept.retried, 0, '--keep-failures folds nothing');
  assert.equal(kept.skipped, 4);
  assert.equal(kept.failed, 1);
  assert.deepEqual(readFileSync(join(root, 'kept.jsonl'), 'utf8'), readFileSync(join(root, 'again.jsonl'), 'utf8'));

  const plain = (...extra: string[]) => kvfold(runArgs(store, join(root, 'plain.jsonl'), model, ...extra).filter((a) => a !== '--json'));
  const keptPlain = await plain('--keep-failures');
  assert.equal(keptPlain.code, 1);
  assert.match(keptPlain.stderr, /long\.txt \(failed earlier, kept\)/);
  assert.match(keptPlain.stderr, /a\.md \(done earlier\)/);
  assert.match(keptPlain.stderr, /kvfold: 1 of 4 documents failed \(errors in .*plain\.jsonl\); run again without --keep-failures to retry them/);
  const retryPlain = await plain();
  assert.equal(retryPlain.code, 1);
  assert.match(retryPlain.stderr, /long\.txt \(failed earlier, trying again\)/);
  assert.match(retryPlain.stdout, /4 documents: 3 completed, 1 failed \(0 folded and 1 failed now, 1 of them retried, 3 done earlier\)/);
});

test('a document proven over the token limit is refused before folding, by name; the others fold and the run exits 1', async () => {
  const dir = join(root, 'proven');
  mkdirSync(dir);
  writeFileSync(join(dir, 'short.txt'), 'A short document that fits. '.repeat(4));
  writeFileSync(join(dir, 'huge.txt'), 'This document is far over the token limit. '.repeat(40));
  const r = await kvfold(['run', dir, '--model', model, '--store', join(root, 'proven-store'), '--chunk-size', '32', '--ask', 'What is carried?', '--max-new-tokens', '4', '--max-tokens-per-document', '600', '--json']);
  const summary = json<Summary>(r, 1);
  assert.deepEqual([summary.documents, summary.completed, summary.failed], [1, 1, 0]);
  assert.deepEqual(summary.refusedEntries.map((e) => e.entry), ['proven/huge.txt']);
  assert.match(summary.refusedEntries[0]?.reason ?? '', /^at least \d+ tokens .* over maxTokensPerDocument 600/);
  assert.match(r.stderr, /kvfold: 1 documents were refused before folding as over the token limit or the size cap/);
});

test('a run whose model folder is missing, or is not a model, exits 1 in one line and makes no batch; once the model is there, it folds', async () => {
  const later = join(root, 'model-later');
  const store = join(root, 'store-model-later');
  const out = join(root, 'model-later.jsonl');
  const args = ['run', join(corpus, 'a.md'), join(corpus, 'notes'), '--model', later, '--store', store, '--out', out, '--chunk-size', '32', '--json'];
  const missing = await kvfold(args);
  assert.equal(missing.code, 1);
  assert.equal(missing.stderr.trim().split('\n').length, 1, missing.stderr);
  assert.match(missing.stderr, /does not exist here/);
  assert.ok(missing.stderr.includes(later));
  mkdirSync(later);
  writeFileSync(join(later, 'notes.txt'), 'not a model\n');
  const notModel = await kvfold(args);
  assert.equal(notModel.code, 1);
  assert.equal(notModel.stderr.trim().split('\n').length, 1, notModel.stderr);
  assert.match(notModel.stderr, /config\.json/);
  assert.ok(!existsSync(join(store, 'batches')) && !existsSync(out), 'no batch, no results');
  rmSync(later, { recursive: true });
  cpSync(model, later, { recursive: true });
  const folded = json<Summary>(await kvfold(args));
  assert.equal(folded.foldedNow, 2);
  assert.equal(folded.completed, 2);
  assert.deepEqual(lines(out).map((r) => r.status), ['completed', 'completed']);
});

test('a model pushed to an S3 store is fetched, verified and gives the same results', async () => {
  const env = {
    KVFOLD_S3_ENDPOINT: s3.endpoint,
    KVFOLD_S3_FORCE_PATH_STYLE: 'true',
    KVFOLD_S3_CONDITIONAL_WRITES: String(s3.settings.conditionalWrites),
    AWS_ACCESS_KEY_ID: TEST_S3_CREDENTIALS.accessKeyId,
    AWS_SECRET_ACCESS_KEY: TEST_S3_CREDENTIALS.secretAccessKey,
  };
  const uri = s3.uri('models/tiny-llama');
  const pushed = await kvfold(['models', 'push', model, uri], { env });
  assert.equal(pushed.code, 0, pushed.stderr);
  assert.match(pushed.stdout, /pushed 7 files/);
  const local = join(root, 'local.jsonl');
  const remote = join(root, 'remote.jsonl');
  // Both fail long.txt (over the token limit) alone, so both exit 1.
  json(await kvfold(runArgs(join(root, 'store-local'), local), { env }), 1);
  json(await kvfold(runArgs(s3.uri('run-store'), remote, uri), { env }), 1);
  const strip = (x: ResultLine) => ({ docId: x.docId, status: x.status, tokens: x.tokens, answers: x.answers });
  assert.deepEqual(lines(remote).map(strip), lines(local).map(strip));
});

// Fast: the test's own timeout is the bar (an unreachable endpoint must not be retried for minutes).
test('a store URI that is malformed or unreachable fails fast, naming it', { timeout: 60_000 }, async () => {
  const bad = await kvfold(['run', corpus, '--model', model, '--store', 'ftp://example/x']);
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /ftp:\/\/example\/x/);
  const down = await kvfold(['fold', join(corpus, 'a.md'), '--model', model, '--checkpoint', 's3://kvfold-test/x'], {
    env: { KVFOLD_S3_ENDPOINT: 'http://127.0.0.1:9', KVFOLD_S3_FORCE_PATH_STYLE: 'true', AWS_ACCESS_KEY_ID: 'a', AWS_SECRET_ACCESS_KEY: 'b' },
  });
  assert.equal(down.code, 1);
  assert.match(down.stderr, /s3:\/\/kvfold-test\/x/);
  assert.match(down.stderr, /KVF_STORE_UNREACHABLE/);
});

test('rejected S3 credentials are reported as such', async () => {
  const r = await kvfold(['fold', join(corpus, 'a.md'), '--model', model, '--checkpoint', s3.uri('creds')], {
    env: { KVFOLD_S3_ENDPOINT: s3.endpoint, KVFOLD_S3_FORCE_PATH_STYLE: 'true', AWS_ACCESS_KEY_ID: 'WRONG', AWS_SECRET_ACCESS_KEY: 'S3RVER' },
  });
  assert.equal(r.code, 1);
  assert.match(r.stderr, /KVF_STORE_CREDENTIALS/);
});

test('Ctrl-C stops a run after the current step with a checkpoint; the next run resumes there', async () => {
  const big = join(root, 'big');
  mkdirSync(big);
  writeFileSync(join(big, 'long.txt'), Array.from({ length: 300 }, (_, i) => `Line ${i} of a document long enough to interrupt.`).join('\n'));
  const store = join(root, 'interrupt-store');
  const args = ['run', big, '--model', model, '--store', store, '--chunk-size', '16', '--checkpoint-every', '4', '--json', '--out', join(root, 'interrupted.jsonl')];
  const first = startKvfold(args);
  const checkpoints = join(store, 'checkpoints');
  const deadline = Date.now() + 60_000;
  while (!(existsSync(checkpoints) && readdirSync(checkpoints).length > 0 && manifestStep(checkpoints) >= 8)) {
    assert.ok(Date.now() < deadline, 'no checkpoint within 60 s');
    await new Promise((r) => setTimeout(r, 20));
  }
  first.child.kill('SIGINT');
  const stopped = await first.done;
  assert.equal(stopped.code, 130, stopped.stderr);
  assert.match(stopped.stderr, /stopping after the current step/);
  assert.equal((JSON.parse(stopped.stdout) as Summary).stopped, true);

  const second = json<Summary>(await kvfold(args));
  assert.equal(second.foldedNow, 1);
  const [result] = lines(join(root, 'interrupted.jsonl')) as (ResultLine & { resumedFromStep: number })[];
  assert.ok((result?.resumedFromStep ?? 0) >= 8, `resumed from ${result?.resumedFromStep}`);
});

function manifestStep(checkpoints: string): number {
  try {
    const doc = readdirSync(checkpoints)[0] as string;
    return JSON.parse(readFileSync(join(checkpoints, doc, 'manifest.json'), 'utf8')).step as number;
  } catch {
    return 0;
  }
}
