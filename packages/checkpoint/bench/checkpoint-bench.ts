/**
 * Checkpoint benchmark (not a test): f32 segment throughput on the filesystem store and on s3rver,
 * beside a plain fs.copyFile of the same bytes, and upload bytes over a whole document.
 *
 *     node --import tsx packages/checkpoint/bench/checkpoint-bench.ts [--mb 256] [--s3-mb 64] [--out file.json]
 */
import { randomFillSync } from 'node:crypto';
import { copyFile, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { parseArgs } from 'node:util';
import { HostKvCache, type KvLayout, kvRowBytes } from '@kvfold/fold-core';
import { FsObjectStore, type ObjectStore } from '@kvfold/storage';
import { startTestS3Server } from '@kvfold/storage/testing';
import { decodeSegment, encodeSegment, loadCheckpoint, openCheckpoint } from '../src/index.ts';

const MiB = 1024 * 1024;
/** A Llama-3-8B-shaped cache in float32: 32 layers x 8 KV heads x 128 dims, 256 KiB per token. */
const LAYOUT: KvLayout = { layers: 32, kvHeads: 8, headDim: 128, dtype: 'float32', maxPositions: 131072 };
/** Document fold for the upload ratio: this many steps, a checkpoint every 8 (DESIGN.md). */
const DOC_STEPS = 64;
const EVERY = 8;

const { values: args } = parseArgs({
  options: { mb: { type: 'string', default: '256' }, 's3-mb': { type: 'string' }, out: { type: 'string' } },
});
const mb = Number(args.mb);
const s3mb = Number(args['s3-mb'] ?? Math.min(mb, 64));

/** Random rows for every layer (the f32 codec copies bits; values do not matter). */
function randomRows(rows: number) {
  const n = LAYOUT.kvHeads * rows * LAYOUT.headDim;
  const layers = Array.from({ length: LAYOUT.layers }, () => ({
    key: randomFillSync(new Float32Array(n)), // [kvHeads, rows, headDim]
    value: randomFillSync(new Float32Array(n)), // [kvHeads, rows, headDim]
  }));
  return { rows, layers };
}

/** A cache of about `mb` MiB of random bits. */
function bigState(sizeMb: number): HostKvCache {
  const rows = Math.max(1, Math.round((sizeMb * MiB) / kvRowBytes(LAYOUT)));
  const cache = new HostKvCache(LAYOUT, rows);
  cache.buffer.append(randomRows(rows));
  return cache;
}

async function time<T>(fn: () => Promise<T>): Promise<[T, number]> {
  const t0 = performance.now();
  const out = await fn();
  return [out, (performance.now() - t0) / 1000];
}

interface Row {
  store: string;
  what: string;
  mb: number;
  seconds: number;
  mbPerS: number;
}
const rows: Row[] = [];
const record = (store: string, what: string, bytes: number, seconds: number) =>
  rows.push({ store, what, mb: bytes / MiB, seconds, mbPerS: bytes / MiB / seconds });

async function segmentRoundTrip(name: string, store: ObjectStore, state: HostKvCache): Promise<void> {
  const bytes = state.bytes;
  const segment = { layout: LAYOUT, rowFrom: 0, rows: state.buffer.read(0, state.length), nextPosition: state.nextPosition, tokensSeen: state.tokensSeen };
  await time(() => store.put('bench/raw.kvf', Readable.from(encodeSegment(segment, { codec: 'f32' })))).then(([, s]) =>
    record(name, 'encode+write segment', bytes, s),
  );
  await time(async () => decodeSegment(await store.get('bench/raw.kvf'), 'bench/raw.kvf')).then(([, s]) =>
    record(name, 'read+decode segment (sha256 verified)', bytes, s),
  );
  const loc = { prefix: 'bench', docKey: `doc-${name}` };
  const fingerprints = { model: 'bench', tokenizer: 'bench', chunkSize: 512, policy: 'full', codec: 'f32' as const };
  const { writer } = await openCheckpoint(store, { ...loc, fingerprints, layout: LAYOUT, appendOnly: true, fresh: true, into: new HostKvCache(LAYOUT) });
  await time(async () => {
    await writer.commit(state, 1);
    await writer.flush();
  }).then(([, s]) => record(name, 'writer commit (encode + sha256 + write + manifest)', bytes, s));
  const into = new HostKvCache(LAYOUT, state.length);
  await time(() => loadCheckpoint(store, loc, into)).then(([, s]) => record(name, 'loadCheckpoint (read + verify + load into a cache)', bytes, s));
  await writer.finalize();
  await store.delete('bench/raw.kvf');
}

async function uploadRatio(store: ObjectStore, finalMb: number): Promise<{ finalBytes: number; uploaded: number; ratio: number }> {
  const rowsPerStep = Math.max(1, Math.round((finalMb * MiB) / kvRowBytes(LAYOUT) / DOC_STEPS));
  const fingerprints = { model: 'bench', tokenizer: 'bench', chunkSize: rowsPerStep, policy: 'full', codec: 'f32' as const };
  const loc = { prefix: 'bench', docKey: 'ratio' };
  const { writer } = await openCheckpoint(store, { ...loc, fingerprints, layout: LAYOUT, appendOnly: true, fresh: true, everySteps: EVERY, into: new HostKvCache(LAYOUT) });
  const state = new HostKvCache(LAYOUT, rowsPerStep * DOC_STEPS);
  for (let step = 1; step <= DOC_STEPS; step++) {
    state.buffer.append(randomRows(rowsPerStep));
    if (writer.due(step)) await writer.commit(state, step);
  }
  await writer.flush();
  const uploaded = writer.stats.segmentBytes + writer.stats.manifestBytes;
  await writer.finalize();
  return { finalBytes: state.bytes, uploaded, ratio: uploaded / state.bytes };
}

const dir = await mkdtemp(join(tmpdir(), 'kvfold-bench-'));
try {
  const state = bigState(mb);
  const bytes = state.bytes;
  const fs = new FsObjectStore(join(dir, 'store'));
  // Baseline: the same number of bytes copied by the kernel, in the same run and directory.
  const src = join(dir, 'plain.bin');
  const blob = Buffer.alloc(bytes);
  randomFillSync(blob);
  await writeFile(src, blob);
  const [, copyS] = await time(() => copyFile(src, join(dir, 'plain-copy.bin')));
  record('fs', 'fs.copyFile baseline', bytes, copyS);
  await rm(src);
  await rm(join(dir, 'plain-copy.bin'));
  await segmentRoundTrip('fs', fs, state);
  const ratioFs = await uploadRatio(fs, Math.min(mb, 64));

  const s3 = await startTestS3Server();
  let ratioS3: Awaited<ReturnType<typeof uploadRatio>> | null = null;
  try {
    await segmentRoundTrip('s3rver', s3.store('b', { partSize: 16 * MiB }), bigState(s3mb));
    ratioS3 = await uploadRatio(s3.store('r'), Math.min(s3mb, 32));
  } finally {
    await s3.stop();
  }

  console.log(`\nKVF f32 checkpoint benchmark: state ${LAYOUT.layers}x${LAYOUT.kvHeads}x${LAYOUT.headDim} float32\n`);
  console.log(`${'store'.padEnd(8)} ${'operation'.padEnd(56)} ${'MiB'.padStart(8)} ${'s'.padStart(8)} ${'MiB/s'.padStart(9)}`);
  for (const r of rows) {
    console.log(
      `${r.store.padEnd(8)} ${r.what.padEnd(56)} ${r.mb.toFixed(1).padStart(8)} ${r.seconds.toFixed(3).padStart(8)} ${r.mbPerS.toFixed(0).padStart(9)}`,
    );
  }
  const showRatio = (name: string, r: { finalBytes: number; uploaded: number; ratio: number }) =>
    console.log(`${name}: ${DOC_STEPS} steps, checkpoint every ${EVERY}: uploaded ${(r.uploaded / MiB).toFixed(1)} MiB for a ${(r.finalBytes / MiB).toFixed(1)} MiB final cache = ${r.ratio.toFixed(4)}x`);
  console.log('');
  showRatio('fs', ratioFs);
  if (ratioS3) showRatio('s3rver', ratioS3);
  if (args.out) {
    await writeFile(args.out, `${JSON.stringify({ layout: LAYOUT, mb, s3mb, rows, uploadRatio: { fs: ratioFs, s3rver: ratioS3 } }, null, 2)}\n`);
    console.log(`\nwrote ${args.out}`);
  }
} finally {
  await rm(dir, { recursive: true, force: true });
}
