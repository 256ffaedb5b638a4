/**
 * `kvfold store check` and `kvfold store gc` as a user runs them: check reports what the test S3
 * server enforces; gc on the filesystem store of a real `run --keep-final` removes a checkpoint
 * folder without a manifest only once it is older than --grace, reports without removing in a dry
 * run, and keeps the final state. (The sweep's other cases: packages/checkpoint/src/sweep.test.ts.)
 */
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, readdirSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { startTestS3Server, TEST_S3_CREDENTIALS, type TestS3Server } from '@kvfold/storage/testing';
import { kvfold } from '../test-support.ts';

const root = mkdtempSync(join(tmpdir(), 'kvfold-store-cmd-'));
let s3: TestS3Server;
before(async () => {
  s3 = await startTestS3Server();
});
after(async () => {
  await s3.stop();
  rmSync(root, { recursive: true, force: true });
});

/** Every file under `dir`, relative to it. */
function files(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => join(e.parentPath, e.name).slice(dir.length + 1))
    .sort();
}

test('store check reports the conditional writes the S3 server enforces', async () => {
  const env = { KVFOLD_S3_ENDPOINT: s3.endpoint, KVFOLD_S3_FORCE_PATH_STYLE: 'true', AWS_ACCESS_KEY_ID: TEST_S3_CREDENTIALS.accessKeyId, AWS_SECRET_ACCESS_KEY: TEST_S3_CREDENTIALS.secretAccessKey };
  const r = await kvfold(['store', 'check', '--store', s3.uri('check'), '--json'], { env });
  assert.equal(r.code, 0, r.stderr);
  const report = JSON.parse(r.stdout);
  assert.equal(report.enforced.ifNoneMatch, true);
  assert.ok(['quoted', 'bare'].includes(report.enforced.ifMatch));
});

test('store gc removes a checkpoint folder without a manifest once older than --grace, and keeps a final state', async () => {
  const model = join(root, 'tiny');
  assert.equal((await kvfold(['models', 'build', 'tiny-llama', '--out', model])).code, 0);
  writeFileSync(join(root, 'doc.txt'), 'The fold carries the KV cache from chunk to chunk. '.repeat(20));
  const store = join(root, 'store');
  const run = await kvfold(['run', join(root, 'doc.txt'), '--model', model, '--store', store, '--chunk-size', '32', '--checkpoint-every', '2', '--keep-final', '--json']);
  assert.equal(run.code, 0, run.stderr);
  const checkpoints = join(store, 'checkpoints');
  const kept = files(checkpoints);
  assert.ok(kept.some((f) => f.endsWith('manifest.json')), `a kept final state: ${kept.join(', ')}`);
  // Garbage beside it: a folder without a manifest (an attempt that died before its first commit).
  const orphan = join(checkpoints, `${'a'.repeat(64)}-0123456789abcdef`, 'segments');
  cpSync(join(checkpoints, kept.find((f) => f.includes('/segments/')) as string), join(orphan, '0000000000-0000000002-feed.kvf'), { recursive: true });
  const gc = async (...flags: string[]) => {
    const r = await kvfold(['store', 'gc', '--store', store, '--json', ...flags]);
    assert.equal(r.code, 0, r.stderr);
    return JSON.parse(r.stdout);
  };
  assert.deepEqual([(await gc()).unlistedRemoved, (await gc()).youngKept], [0, 1], 'young garbage is kept');
  const old = new Date(Date.now() - 2 * 3600_000);
  for (const f of files(checkpoints)) utimesSync(join(checkpoints, f), old, old);
  const dry = await gc('--dry-run');
  assert.equal(dry.unlistedRemoved, 1);
  assert.equal(files(checkpoints).length, kept.length + 1, 'a dry run removes nothing');
  const swept = await gc('--grace', '30m');
  assert.deepEqual([swept.unlistedRemoved, swept.completedRemoved], [1, 0], 'a kept final state is not garbage');
  assert.deepEqual(files(checkpoints), kept);
});
