/**
 * The checkpoint sweep on a real filesystem store: a segment no manifest lists and a folder
 * without a manifest are removed once older than the grace age, never before; the checkpoint of a
 * completed document is removed whole, unless it is a kept final state; live checkpoints stay
 * loadable.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, utimes } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { HostKvCache } from '@kvfold/fold-core';
import { FsObjectStore } from '@kvfold/storage';
import { openCheckpoint } from './checkpoint-writer.ts';
import type { Fingerprints } from './manifest.ts';
import { loadCheckpoint } from './load-checkpoint.ts';
import { sweepCheckpoints } from './sweep.ts';
import { foldStates, LAYOUT32 } from './test-kv.ts';

const FP: Fingerprints = { model: 'sha256:model-a', tokenizer: 'sha256:tok-a', chunkSize: 16, policy: 'full', codec: 'f32' };
const HOUR = 3_600_000;
let dir: string;
let store: FsObjectStore;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'kvfold-sweep-'));
  store = new FsObjectStore(join(dir, 'store'));
});
after(() => rm(dir, { recursive: true, force: true }));

const keys = async (prefix: string) => {
  const out: string[] = [];
  for await (const o of store.list(prefix)) out.push(o.key);
  return out.sort();
};
/** Makes an object look `hours` old. */
const age = (key: string, hours: number) => {
  const t = new Date(Date.now() - hours * HOUR);
  return utimes(join(dir, 'store', key), t, t);
};

async function checkpoint(docKey: string, steps: number, keepFinal = false) {
  const states = foldStates(LAYOUT32, steps, 4, docKey.length);
  const { writer } = await openCheckpoint(store, { prefix: 'checkpoints', docKey, fingerprints: FP, layout: LAYOUT32, into: new HostKvCache(LAYOUT32), appendOnly: true, everySteps: 8 });
  for (let s = 8; s <= steps; s += 8) await writer.commit(states[s - 1]!, s);
  await writer.flush();
  if (keepFinal) await writer.finalize({ keepFinal: true });
}

test('unlisted objects older than the grace age go, younger ones and every listed one stay; completed documents lose their checkpoint unless it is final', async () => {
  await checkpoint('live', 16);
  await checkpoint('done', 8);
  await checkpoint('kept', 8, true);
  // A segment an attempt uploaded before dying (no manifest lists it), and a folder without a manifest.
  await store.put('checkpoints/live/segments/0000000016-0000000024-deadbeef.kvf', new Uint8Array(100));
  await store.put('checkpoints/orphan/segments/0000000000-0000000008-cafe.kvf', new Uint8Array(50));
  const fresh = await sweepCheckpoints(store, { prefix: 'checkpoints', graceMs: HOUR, completed: async (k) => k === 'done' || k === 'kept' });
  assert.deepEqual([fresh.unlistedRemoved, fresh.completedRemoved, fresh.youngKept], [0, 0, 2], 'everything is younger than the grace age');
  for (const k of await keys('checkpoints/')) await age(k, 2);
  const dry = await sweepCheckpoints(store, { prefix: 'checkpoints', graceMs: HOUR, completed: async (k) => k === 'done' || k === 'kept', dryRun: true });
  assert.deepEqual([dry.folders, dry.unlistedRemoved, dry.completedRemoved], [4, 2, 1]);
  assert.ok((await keys('checkpoints/orphan/')).length === 1, 'a dry run removes nothing');
  const swept = await sweepCheckpoints(store, { prefix: 'checkpoints', graceMs: HOUR, completed: async (k) => k === 'done' || k === 'kept' });
  assert.deepEqual([swept.unlistedRemoved, swept.completedRemoved, swept.bytesRemoved > 150], [2, 1, true]);
  assert.deepEqual(await keys('checkpoints/orphan/'), []);
  assert.deepEqual(await keys('checkpoints/done/'), []);
  assert.ok((await keys('checkpoints/kept/')).includes('checkpoints/kept/manifest.json'), 'a kept final state stays');
  const live = await keys('checkpoints/live/');
  assert.ok(!live.some((k) => k.includes('deadbeef')));
  const loaded = await loadCheckpoint(store, { prefix: 'checkpoints', docKey: 'live' }, new HostKvCache(LAYOUT32));
  assert.equal(loaded?.step, 16, 'the live checkpoint still loads whole');
});
