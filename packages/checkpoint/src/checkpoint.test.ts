/**
 * Checkpoints on real stores (a temp-dir FsObjectStore and s3rver): round trips, fallback to the
 * valid prefix, refusals, fencing, crash safety under write failures, bounded overlap, lifecycle.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { HostKvCache } from '@kvfold/fold-core';
import { type Body, FsObjectStore, type ObjectStore, PreconditionFailedError, type PutOptions, StoreError } from '@kvfold/storage';
import { startTestS3Server, type TestS3Server } from '@kvfold/storage/testing';
import { deleteCheckpoint, openCheckpoint, type OpenCheckpointOptions } from './checkpoint-writer.ts';
import type { DocLocation } from './keys.ts';
import { CheckpointError, CheckpointFencedError, FingerprintMismatchError } from './errors.ts';
import { loadFinalState } from './final-state.ts';
import { manifestKey } from './keys.ts';
import { type Expected, loadCheckpoint } from './load-checkpoint.ts';
import type { Fingerprints } from './manifest.ts';
import { assertSameState, foldStates, LAYOUT8, LAYOUT32 } from './test-kv.ts';

const FP: Fingerprints = { model: 'sha256:model-a', tokenizer: 'sha256:tok-a', chunkSize: 16, policy: 'full', codec: 'f32' };
const EVERY = 8;

/** Delegates every call to a real store; subclasses inject faults or delays into `put`. */
class Wrapped implements ObjectStore {
  constructor(readonly inner: ObjectStore) {}
  get uri() { return this.inner.uri; }
  get conditionalWrites() { return this.inner.conditionalWrites; }
  put(key: string, body: Body, options?: PutOptions) { return this.inner.put(key, body, options); }
  get(key: string, range?: { start: number; end?: number }) { return this.inner.get(key, range); }
  getBytes(key: string, range?: { start: number; end?: number }) { return this.inner.getBytes(key, range); }
  head(key: string) { return this.inner.head(key); }
  list(prefix: string) { return this.inner.list(prefix); }
  delete(key: string) { return this.inner.delete(key); }
}

/** A real store whose puts of matching keys fail after the first `okPuts` (like a disk filling up). */
class FailingPuts extends Wrapped {
  okPuts: number;
  constructor(inner: ObjectStore, readonly match: RegExp, okPuts: number) {
    super(inner);
    this.okPuts = okPuts;
  }
  override async put(key: string, body: Body, options?: PutOptions) {
    if (this.match.test(key) && this.okPuts-- <= 0) {
      // Consume part of the body first, as a real write that runs out of space would.
      if (!(body instanceof Uint8Array)) for await (const _ of body as AsyncIterable<Uint8Array>) break;
      throw Object.assign(new Error(`ENOSPC: no space left on device, write '${key}'`), { code: 'ENOSPC' });
    }
    return this.inner.put(key, body, options);
  }
}

async function keysUnder(store: ObjectStore, prefix: string): Promise<string[]> {
  const out: string[] = [];
  for await (const o of store.list(prefix)) out.push(o.key);
  return out;
}

type DocOptions = Omit<OpenCheckpointOptions, 'into'>;

/** Opens a checkpoint with a fresh cache to resume into; returns the cache too. */
async function open(store: ObjectStore, opts: DocOptions) {
  const cache = new HostKvCache(opts.layout);
  return { ...(await openCheckpoint(store, { ...opts, into: cache })), cache };
}

/** Loads a checkpoint into a fresh cache; null when there is none. */
async function load(store: ObjectStore, opts: DocLocation & { layout?: DocOptions['layout'] }, expect?: Expected) {
  const cache = new HostKvCache(opts.layout ?? LAYOUT32);
  const loaded = await loadCheckpoint(store, opts, cache, expect);
  return loaded && { ...loaded, cache };
}

/** Loads a kept final state into a fresh cache; null when there is none. */
async function loadFinal(store: ObjectStore, loc: DocLocation, settings: Parameters<typeof loadFinalState>[2]) {
  const cache = new HostKvCache(LAYOUT32);
  const loaded = await loadFinalState(store, loc, settings, cache);
  return loaded && { ...loaded, cache };
}

/** Folds `states` from step 1, committing every EVERY steps; returns the writer. */
async function foldWith(store: ObjectStore, opts: DocOptions, states: HostKvCache[], fromStep = 0) {
  const { writer } = await open(store, opts);
  for (let step = fromStep + 1; step <= states.length; step++) {
    if (writer.due(step) || step === states.length) await writer.commit(states[step - 1]!, step);
  }
  await writer.flush();
  return writer;
}

// 's3-unconditional': a backend that ignores If-Match / If-None-Match, declared as such, so the
// writer's own re-read is all that fences.
for (const backend of ['fs', 's3', 's3-unconditional'] as const) {
  describe(`checkpoints on ${backend}`, () => {
    let dir: string;
    let s3: TestS3Server | undefined;
    let n = 0;
    let store: ObjectStore;
    const doc = () => ({ prefix: 'ckpt', docKey: `doc-${++n}`, fingerprints: FP, layout: LAYOUT32, appendOnly: true, everySteps: EVERY });

    before(async () => {
      dir = await mkdtemp(join(tmpdir(), 'kvfold-ckpt-'));
      if (backend !== 'fs') {
        s3 = await startTestS3Server({ conditionalWrites: backend === 's3' });
        store = s3.store('root');
      } else {
        store = new FsObjectStore(dir);
      }
    });
    after(async () => {
      await s3?.stop();
      await rm(dir, { recursive: true, force: true });
    });

    test('append-only segments + manifest rebuild the final state bit-exactly; uploads ~1.0x the cache', async () => {
      const states = foldStates(LAYOUT32, 37, 16, 11);
      const opts = doc();
      const writer = await foldWith(store, opts, states);
      const final = states.at(-1)!;
      const loaded = await load(store, opts, { fingerprints: FP, layout: LAYOUT32 });
      assert.ok(loaded);
      await assertSameState(loaded.cache, final);
      assert.deepEqual([loaded.step, loaded.tokens, loaded.warnings, loaded.fellBackFrom], [37, final.tokensSeen, [], null]);
      assert.equal(loaded.manifest.segments.length, 5); // steps 8, 16, 24, 32, 37
      assert.deepEqual(loaded.manifest.segments.map((s) => s.steps), [[0, 8], [8, 16], [16, 24], [24, 32], [32, 37]]);
      const ratio = writer.stats.segmentBytes / final.bytes;
      assert.ok(ratio >= 1 && ratio < 1.01, `segment bytes / cache bytes = ${ratio}`);
    });

    test('an int8 cache is checkpointed as it is held and loads bit-exactly; a cache of another width is refused naming both', async () => {
      const states = foldStates(LAYOUT8, 12, 4, 21);
      const opts = { ...doc(), layout: LAYOUT8, fingerprints: { ...FP, codec: 'int8' as const } };
      const writer = await foldWith(store, opts, states);
      const final = states.at(-1) as HostKvCache;
      assert.equal(writer.stats.segmentBytes, final.bytes + (80 + 32) * writer.manifest.segments.length, 'codes and scales as held, plus headers');
      const loaded = await load(store, opts, { fingerprints: opts.fingerprints, layout: LAYOUT8 });
      assert.ok(loaded);
      await assertSameState(loaded.cache, final);
      await assert.rejects(load(store, { ...opts, layout: LAYOUT32 }, { fingerprints: opts.fingerprints, layout: LAYOUT32 }), {
        code: 'KVF_CKPT_FINGERPRINT',
        message: /made with layout 3x2x8 int8, this run uses 3x2x8 float32/,
      });
    });

    test('a resumed fold continues from the checkpoint and ends bit-identical to an uninterrupted one', async () => {
      const states = foldStates(LAYOUT32, 20, 8, 5);
      const opts = doc();
      const first = await open(store, opts);
      for (let step = 1; step <= 13; step++) if (first.writer.due(step)) await first.writer.commit(states[step - 1]!, step);
      await first.writer.flush(); // "crash" after step 13: last checkpoint is step 8
      const second = await open(store, opts);
      assert.equal(second.resume?.step, 8);
      await assertSameState(second.cache, states[7]!);
      assert.ok(second.writer.generation > first.writer.generation);
      for (let step = 9; step <= 20; step++) {
        if (second.writer.due(step) || step === 20) await second.writer.commit(states[step - 1]!, step);
      }
      await second.writer.flush();
      await assertSameState((await load(store, opts))?.cache, states[19]!);
    });

    test('a non-append-only writer stores one full snapshot per commit and drops the previous', async () => {
      const states = foldStates(LAYOUT32, 24, 4, 6);
      const opts = { ...doc(), appendOnly: false, fingerprints: { ...FP, policy: 'window-64' } };
      const writer = await foldWith(store, opts, states);
      const loaded = await load(store, opts);
      assert.equal(loaded?.manifest.segments.length, 1);
      assert.deepEqual(loaded?.manifest.segments[0]?.rows, [0, 96]);
      await assertSameState(loaded?.cache, states[23]!);
      const segs = await keysUnder(store, `ckpt/${opts.docKey}/segments/`);
      assert.deepEqual(segs, [loaded?.manifest.segments[0]?.key]);
      assert.equal(writer.stats.commits, 3);
    });

    test('a corrupt middle segment: load falls back to the prefix before it and says so', async () => {
      const states = foldStates(LAYOUT32, 32, 4, 8);
      const opts = doc();
      await foldWith(store, opts, states);
      const before = await load(store, opts);
      const victim = before?.manifest.segments[2];
      assert.ok(victim);
      const bytes = Uint8Array.from(await store.getBytes(victim.key));
      bytes[bytes.length - 100] = (bytes[bytes.length - 100] as number) ^ 0xff;
      await store.put(victim.key, bytes);
      const loaded = await load(store, opts);
      assert.ok(loaded);
      assert.equal(loaded.step, 16);
      await assertSameState(loaded.cache, states[15]!);
      assert.deepEqual(loaded.fellBackFrom && [loaded.fellBackFrom.fromStep, loaded.fellBackFrom.toStep, loaded.fellBackFrom.segment], [32, 16, victim.key]);
      assert.match(loaded.warnings[0] ?? '', /sha256 mismatch.*resuming from step 16/);
    });

    test('a missing segment: load falls back likewise, and a reopened writer continues from there', async () => {
      const states = foldStates(LAYOUT32, 24, 4, 9);
      const opts = doc();
      await foldWith(store, opts, states);
      const victim = (await load(store, opts))?.manifest.segments[1];
      assert.ok(victim);
      await store.delete(victim.key);
      const loaded = await load(store, opts);
      assert.equal(loaded?.step, 8);
      assert.match(loaded?.warnings[0] ?? '', /no object/);
      const { writer, resume, warnings } = await open(store, opts);
      assert.equal(resume?.step, 8);
      assert.equal(warnings.length, 1);
      for (const step of [16, 24]) await writer.commit(states[step - 1]!, step);
      await writer.flush();
      await assertSameState((await load(store, opts))?.cache, states[23]!);
    });

    test('a manifest with a newer formatVersion is refused with a message; fresh starts over', async () => {
      const opts = doc();
      await foldWith(store, opts, foldStates(LAYOUT32, 8, 2, 1));
      const key = manifestKey(opts);
      const m = JSON.parse(new TextDecoder().decode(await store.getBytes(key)));
      await store.put(key, new TextEncoder().encode(JSON.stringify({ ...m, formatVersion: 2, newField: 1 })));
      const isVersion = (e: unknown) => e instanceof CheckpointError && e.code === 'KVF_CKPT_VERSION' && /format version 2/.test(e.message) && e.message.includes(key);
      await assert.rejects(load(store, opts), isVersion);
      await assert.rejects(open(store, opts), isVersion);
      const { resume } = await open(store, { ...opts, fresh: true });
      assert.equal(resume, null);
      assert.equal((await load(store, opts))?.manifest.formatVersion, 1);
    });

    test('other settings are refused naming the field; fresh ignores the old checkpoint', async () => {
      const opts = doc();
      await foldWith(store, opts, foldStates(LAYOUT32, 8, 2, 2));
      const changes: [keyof Fingerprints, string | number][] = [
        ['model', 'sha256:model-b'],
        ['tokenizer', 'sha256:tok-b'],
        ['chunkSize', 32],
        ['policy', 'window-128'],
        ['codec', 'f16'],
      ];
      for (const [field, value] of changes) {
        await assert.rejects(open(store, { ...opts, fingerprints: { ...FP, [field]: value } }), (e: unknown) => {
          assert.ok(e instanceof FingerprintMismatchError, String(e));
          assert.equal(e.field, field);
          assert.equal(e.code, 'KVF_CKPT_FINGERPRINT');
          assert.match(e.message, new RegExp(`with ${field} .* this run uses ${value}.*fresh`));
          return true;
        });
      }
      await assert.rejects(open(store, { ...opts, layout: { ...LAYOUT32, kvHeads: 4 } }), (e: unknown) => e instanceof FingerprintMismatchError && e.field === 'layout');
      const fresh = await open(store, { ...opts, fingerprints: { ...FP, model: 'sha256:model-b' }, fresh: true });
      assert.equal(fresh.resume, null);
      const states = foldStates(LAYOUT32, 8, 3, 3);
      await fresh.writer.commit(states[7]!, 8);
      await fresh.writer.flush();
      const loaded = await load(store, opts, { fingerprints: { ...FP, model: 'sha256:model-b' } });
      await assertSameState(loaded?.cache, states[7]!);
    });

    test('a stale writer is fenced after a takeover; the stored manifest stays intact and loadable', async () => {
      const states = foldStates(LAYOUT32, 24, 4, 12);
      const opts = doc();
      const a = await open(store, { ...opts, writerId: 'attempt-1' });
      await a.writer.commit(states[7]!, 8);
      await a.writer.flush();
      const b = await open(store, { ...opts, writerId: 'attempt-2' });
      assert.equal(b.resume?.step, 8);
      await a.writer.commit(states[15]!, 16); // starts; fails in the background
      await assert.rejects(a.writer.flush(), (e: unknown) => {
        assert.ok(e instanceof CheckpointFencedError, String(e));
        assert.equal(e.code, 'KVF_CKPT_FENCED');
        assert.deepEqual([e.ownGeneration, e.storedGeneration], [a.writer.generation, b.writer.generation]);
        return true;
      });
      await assert.rejects(a.writer.commit(states[23]!, 24), CheckpointFencedError, 'fencing is permanent');
      const mid = await load(store, opts);
      assert.deepEqual([mid?.manifest.writerId, mid?.step, mid?.warnings.length], ['attempt-2', 8, 0]);
      await b.writer.commit(states[23]!, 24);
      await b.writer.flush();
      await assertSameState((await load(store, opts))?.cache, states[23]!);
      await assert.rejects(a.writer.finalize(), CheckpointFencedError, 'a stale writer cannot delete either');
      assert.ok(await load(store, opts));
    });

    test('a writer paused between its ownership check and its manifest write cannot overwrite a takeover', async () => {
      const states = foldStates(LAYOUT32, 16, 4, 16);
      const opts = doc();
      let armed = false;
      let release: () => void = () => {};
      const gate = new Promise<void>((r) => { release = r; });
      let reached: () => void = () => {};
      const atManifest = new Promise<void>((r) => { reached = r; });
      // Stands in for a process stopped (SIGSTOP, a long GC pause) after its re-read, before its write.
      const pausing = new (class extends Wrapped {
        override async put(key: string, body: Body, o?: PutOptions) {
          if (armed && key.endsWith('/manifest.json')) {
            reached();
            await gate;
          }
          return store.put(key, body, o);
        }
      })(store);
      const a = await open(pausing, { ...opts, writerId: 'attempt-1' });
      await a.writer.commit(states[7]!, 8);
      await a.writer.flush();
      armed = true;
      await a.writer.commit(states[15]!, 16);
      await atManifest;
      const b = await open(store, { ...opts, writerId: 'attempt-2' });
      release();
      await assert.rejects(a.writer.flush(), CheckpointFencedError);
      const stored = await load(store, opts);
      assert.deepEqual([stored?.manifest.writerId, stored?.manifest.generation, stored?.step], ['attempt-2', b.writer.generation, 8]);
      await b.writer.commit(states[15]!, 16);
      await b.writer.flush();
      await assertSameState((await load(store, opts))?.cache, states[15]!);
    });

    test('failing segment writes never leave a manifest pointing at a missing segment', async () => {
      const states = foldStates(LAYOUT32, 24, 4, 13);
      const opts = doc();
      const faulty = new FailingPuts(store, /\/segments\//, 1); // the second segment write fails
      const { writer } = await open(faulty, opts);
      await writer.commit(states[7]!, 8);
      await writer.commit(states[15]!, 16);
      await assert.rejects(writer.flush(), /ENOSPC/);
      const loaded = await load(store, opts);
      assert.deepEqual([loaded?.step, loaded?.warnings], [8, []]);
      await assertSameState(loaded?.cache, states[7]!);
      // The error surfaced once; with space back, the writer carries on from its last commit.
      faulty.okPuts = 100;
      await writer.commit(states[23]!, 24);
      await writer.flush();
      const done = await load(store, opts);
      await assertSameState(done?.cache, states[23]!);
      assert.deepEqual(done?.manifest.segments.map((s) => s.steps), [[0, 8], [8, 24]]);
    });

    test('a failing manifest write leaves the previous manifest in force', async () => {
      const states = foldStates(LAYOUT32, 16, 4, 14);
      const opts = doc();
      const faulty = new FailingPuts(store, /manifest\.json$/, 2); // claim + first commit succeed
      const { writer } = await open(faulty, opts);
      await writer.commit(states[7]!, 8);
      await writer.commit(states[15]!, 16);
      await assert.rejects(writer.flush(), /ENOSPC/);
      const loaded = await load(store, opts);
      assert.equal(loaded?.step, 8);
      await assertSameState(loaded?.cache, states[7]!);
    });

    test('a manifest write whose answer is lost is no takeover: the retry that meets its own write goes on', async () => {
      const states = foldStates(LAYOUT32, 32, 4, 16);
      const opts = doc();
      let lost = 0;
      // The first commit's manifest write lands; its answer is lost, and the client's retry of it is refused (412).
      const lossy = new (class extends Wrapped {
        override async put(key: string, body: Body, o?: PutOptions) {
          const written = await store.put(key, body, o);
          if (key.endsWith('manifest.json') && o?.ifMatch && lost++ === 0) throw new PreconditionFailedError(store.uri, key, 'the etag no longer matches');
          return written;
        }
      })(store);
      const { writer } = await open(lossy, opts);
      await writer.commit(states[7]!, 8);
      await writer.commit(states[15]!, 16);
      await writer.commit(states[23]!, 24);
      await writer.flush();
      assert.equal(lost, 3, 'three manifest commits, the first answered 412');
      const loaded = await load(store, opts);
      assert.equal(loaded?.step, 24);
      await assertSameState(loaded?.cache, states[23]!);
      // Another writer's manifest is still a takeover.
      const { writer: late } = await open(store, opts);
      await late.commit(states[31]!, 32);
      await late.flush();
      await assert.rejects(writer.commit(states[31]!, 32).then(() => writer.flush()), CheckpointFencedError);
    });

    test('a store outage shorter than the retries costs a pause, not the commit; a longer one fails it', async () => {
      const states = foldStates(LAYOUT32, 16, 4, 17);
      const opts = doc();
      // The store does not answer the next `down` writes (as during an outage), then answers again.
      let down = 0;
      let denied = false;
      const flaky = new (class extends Wrapped {
        override async put(key: string, body: Body, o?: PutOptions) {
          if (denied) throw new StoreError('KVF_STORE_CREDENTIALS', `store ${store.uri} rejected the credentials`);
          if (down > 0) {
            down--;
            if (!(body instanceof Uint8Array)) for await (const _ of body as AsyncIterable<Uint8Array>) break;
            throw new StoreError('KVF_STORE_UNREACHABLE', `store ${store.uri} is unreachable: connect ECONNREFUSED`);
          }
          return store.put(key, body, o);
        }
      })(store);
      const { writer } = await openCheckpoint(flaky, { ...opts, into: new HostKvCache(LAYOUT32), retryDelaysMs: [5, 5, 5] });
      down = 3; // the segment's write fails three times, then lands
      await writer.commit(states[7]!, 8);
      await writer.flush();
      assert.equal(writer.stats.retries, 3);
      assert.equal((await load(store, opts))?.step, 8);
      down = 4; // one failure more than the retries: the commit fails, the last one stays in force
      await writer.commit(states[15]!, 16);
      await assert.rejects(writer.flush(), { code: 'KVF_STORE_UNREACHABLE' });
      assert.equal((await load(store, opts))?.step, 8);
      // A refusal that cannot pass (wrong credentials) is not tried again.
      const before = writer.stats.retries;
      denied = true;
      await writer.commit(states[15]!, 16);
      await assert.rejects(writer.flush(), { code: 'KVF_STORE_CREDENTIALS' });
      assert.equal(writer.stats.retries, before);
    });

    test('commit returns while its upload runs, and at most one segment is in flight', async () => {
      const states = foldStates(LAYOUT32, 24, 4, 15);
      const opts = doc();
      let inFlight = 0;
      let maxInFlight = 0;
      let release: () => void = () => {};
      let gate = new Promise<void>((r) => { release = r; });
      let reached: () => void = () => {};
      const putReached = new Promise<void>((r) => { reached = r; });
      const slow = new (class extends Wrapped {
        override async put(key: string, body: Body, o?: PutOptions) {
          if (!key.includes('/segments/')) return store.put(key, body, o);
          inFlight++;
          maxInFlight = Math.max(maxInFlight, inFlight);
          reached();
          await gate;
          try { return await store.put(key, body, o); } finally { inFlight--; }
        }
      })(store);
      const { writer } = await open(slow, opts);
      await writer.commit(states[7]!, 8); // returns although the upload cannot finish yet
      await putReached;
      assert.equal(inFlight, 1, 'the segment upload runs in the background');
      const second = writer.commit(states[15]!, 16);
      let secondReturned = false;
      void second.then(() => { secondReturned = true; });
      // A real round trip to the store: a commit that did not wait would have returned meanwhile.
      await store.head(manifestKey(opts));
      assert.equal(secondReturned, false, 'the second commit waits for the first');
      release();
      await second;
      gate = Promise.resolve();
      await writer.flush();
      assert.equal(maxInFlight, 1);
      await assertSameState((await load(store, opts))?.cache, states[15]!);
    });

    test('finalize removes everything; keepFinal keeps just the final state, loadable by settings', async () => {
      const states = foldStates(LAYOUT32, 16, 4, 16);
      const gone = doc();
      const w1 = await foldWith(store, gone, states);
      await w1.finalize();
      assert.deepEqual(await keysUnder(store, `ckpt/${gone.docKey}/`), []);
      assert.equal(await load(store, gone), null);

      const kept = doc();
      const w2 = await foldWith(store, kept, states);
      await store.put(`ckpt/${kept.docKey}/segments/orphan-from-a-stale-attempt.kvf`, new Uint8Array(3));
      await w2.finalize({ keepFinal: true });
      const left = await keysUnder(store, `ckpt/${kept.docKey}/`);
      const m = (await load(store, kept))?.manifest;
      assert.deepEqual(left.sort(), [manifestKey(kept), ...(m?.segments.map((s) => s.key) ?? [])].sort());
      const final = await loadFinal(store, kept, { fingerprints: FP, layout: LAYOUT32 });
      await assertSameState(final?.cache, states[15]!);
      assert.equal(await loadFinal(store, kept, { fingerprints: { ...FP, model: 'other' } }), null);
      assert.equal(await loadFinal(store, gone, { fingerprints: FP }), null);
      await assert.rejects(w2.commit(states[15]!, 17), (e: unknown) => e instanceof CheckpointError && e.code === 'KVF_CKPT_WRITER_CLOSED');
      await deleteCheckpoint(store, kept);
      assert.deepEqual(await keysUnder(store, `ckpt/${kept.docKey}/`), []);
    });

    test('an extra blob rides along with its step and is dropped on fallback', async () => {
      const states = foldStates(LAYOUT32, 16, 4, 17);
      const opts = doc();
      const { writer } = await open(store, opts);
      await writer.commit(states[7]!, 8, { extra: new Uint8Array([1, 2, 3]) });
      await writer.commit(states[15]!, 16, { extra: new Uint8Array([4, 5, 6, 7]) });
      await writer.flush();
      assert.deepEqual([...((await load(store, opts))?.extra ?? [])], [4, 5, 6, 7]);
      assert.equal((await keysUnder(store, `ckpt/${opts.docKey}/extra/`)).length, 1, 'the step-8 blob was dropped');
      const last = (await load(store, opts))?.manifest.segments[1];
      await store.delete(last?.key as string);
      const fellBack = await load(store, opts);
      assert.deepEqual([fellBack?.step, fellBack?.extra], [8, null]);
    });
  });
}

