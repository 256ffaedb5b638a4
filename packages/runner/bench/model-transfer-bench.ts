/**
 * Model transfer benchmark (not a test): `models push` and the workers' model fetch of a model
 * whose weights file is N GiB (default 3; tiny-llama's external data grown as a sparse file), on
 * the filesystem store and on the s3rver test server. Each step runs in its own process, so its
 * peak RSS is its own: bounded memory shows as a peak far below the file's size.
 *
 *     pnpm bench:models [--gib 3] [--stores fs,s3] [--out bench-results/models.json]
 *
 * Steps: push (read + fingerprint + upload), get (ModelCache.get: fetch as streams where the model
 * is remote, then load, which fingerprints every byte), and beside them fs.copyFile of the same
 * weights as the machine's plain-copy speed.
 */
import { fork } from 'node:child_process';
import { copyFile, mkdir, mkdtemp, rm, stat, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { tinyLlamaSpec, writeModelFolder } from '@kvfold/model-zoo';
import type { S3Settings } from '@kvfold/storage';
import { startTestS3Server } from '@kvfold/storage/testing';
import { ModelCache } from '../src/model-cache.ts';
import { pushModel } from '../src/model-push.ts';

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;

interface StepResult {
  readonly seconds: number;
  /** Resident memory once the modules are loaded, before the step. */
  readonly startRssMiB: number;
  readonly peakRssMiB: number;
  readonly fingerprint: string;
}

interface ChildTask {
  readonly step: 'push' | 'get';
  readonly dir: string;
  readonly uri: string;
  readonly cacheDir: string;
  readonly s3?: S3Settings;
}

/** Runs in the child: one step, its time and peak RSS sent back. */
async function child(task: ChildTask): Promise<StepResult> {
  const storeOptions = task.s3 ? { s3: task.s3 } : {};
  const startRssMiB = process.memoryUsage().rss / MiB;
  const t0 = performance.now();
  let fingerprint: string;
  if (task.step === 'push') {
    fingerprint = (await pushModel(task.dir, task.uri, storeOptions)).fingerprint;
  } else {
    const cache = new ModelCache({ cacheDir: task.cacheDir, storeOptions });
    fingerprint = (await cache.get(task.uri)).fingerprints.model;
    await cache.close();
  }
  const seconds = (performance.now() - t0) / 1000;
  return { seconds, startRssMiB, peakRssMiB: (process.resourceUsage().maxRSS * 1024) / MiB, fingerprint };
}

function inChild(task: ChildTask): Promise<StepResult> {
  return new Promise((ok, fail) => {
    const proc = fork(fileURLToPath(import.meta.url), ['--child', JSON.stringify(task)], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    let result: StepResult | undefined;
    proc.on('message', (m) => {
      result = m as StepResult;
    });
    proc.on('error', fail);
    proc.on('exit', (code) => (result && code === 0 ? ok(result) : fail(new Error(`${task.step} of ${task.uri} exited with ${code}`))));
  });
}

const { values: args } = parseArgs({
  options: { gib: { type: 'string', default: '3' }, stores: { type: 'string', default: 'fs,s3' }, out: { type: 'string' }, child: { type: 'string' } },
});

if (args.child) {
  const result = await child(JSON.parse(args.child) as ChildTask);
  process.send?.(result, () => process.exit(0));
} else {
  const weightsBytes = Math.round(Number(args.gib) * GiB);
  const stores = (args.stores ?? '').split(',').filter(Boolean);
  const root = await mkdtemp(join(tmpdir(), 'kvfold-model-bench-'));
  const rows: { store: string; step: string; mib: number; seconds: number; mibPerS: number; startRssMiB?: number; peakRssMiB?: number }[] = [];
  const s3 = stores.includes('s3') ? await startTestS3Server() : null;
  try {
    const dir = join(root, 'model');
    await writeModelFolder(tinyLlamaSpec(), dir);
    await truncate(join(dir, 'onnx', 'model.onnx_data'), weightsBytes);
    const modelBytes = (await stat(join(dir, 'onnx', 'model.onnx_data'))).size + (await stat(join(dir, 'onnx', 'model.onnx'))).size;
    const mib = modelBytes / MiB;

    const copyStarted = performance.now();
    await copyFile(join(dir, 'onnx', 'model.onnx_data'), join(root, 'copy.bin'));
    const copyS = (performance.now() - copyStarted) / 1000;
    rows.push({ store: 'fs', step: 'fs.copyFile of the weights (baseline)', mib: weightsBytes / MiB, seconds: copyS, mibPerS: weightsBytes / MiB / copyS });
    await rm(join(root, 'copy.bin'));

    for (const store of stores) {
      const uri = store === 's3' && s3 ? s3.uri('models/bench') : pathToFileURL(join(root, 'fs-store', 'models', 'bench')).href;
      if (store === 'fs') await mkdir(dirname(fileURLToPath(uri)), { recursive: true });
      const base = { dir, uri, cacheDir: join(root, `cache-${store}`), ...(s3 && store === 's3' ? { s3: s3.settings } : {}) };
      const pushed = await inChild({ ...base, step: 'push' });
      rows.push({ store, step: 'push (read + fingerprint + upload)', mib, seconds: pushed.seconds, mibPerS: mib / pushed.seconds, startRssMiB: pushed.startRssMiB, peakRssMiB: pushed.peakRssMiB });
      const got = await inChild({ ...base, step: 'get' });
      if (got.fingerprint !== pushed.fingerprint) throw new Error(`${store}: fetched ${got.fingerprint}, pushed ${pushed.fingerprint}`);
      const what = store === 'fs' ? 'get (load from the store folder + fingerprint)' : 'get (fetch as streams + load + fingerprint)';
      rows.push({ store, step: what, mib, seconds: got.seconds, mibPerS: mib / got.seconds, startRssMiB: got.startRssMiB, peakRssMiB: got.peakRssMiB });
    }

    console.log(`\nModel transfer benchmark: tiny-llama with a ${(weightsBytes / GiB).toFixed(2)} GiB sparse weights file (${mib.toFixed(0)} MiB of model)\n`);
    console.log(`${'store'.padEnd(6)} ${'step'.padEnd(48)} ${'MiB'.padStart(7)} ${'s'.padStart(7)} ${'MiB/s'.padStart(7)} ${'RSS start'.padStart(10)} ${'RSS peak'.padStart(9)}`);
    for (const r of rows) {
      const rss = r.peakRssMiB === undefined ? '' : `${(r.startRssMiB ?? 0).toFixed(0).padStart(7)} MiB ${r.peakRssMiB.toFixed(0).padStart(5)} MiB`;
      console.log(`${r.store.padEnd(6)} ${r.step.padEnd(48)} ${r.mib.toFixed(0).padStart(7)} ${r.seconds.toFixed(1).padStart(7)} ${r.mibPerS.toFixed(0).padStart(7)} ${rss}`);
    }
    if (args.out) {
      await mkdir(dirname(args.out), { recursive: true });
      await writeFile(args.out, `${JSON.stringify({ weightsBytes, modelBytes, rows }, null, 2)}\n`);
      console.log(`\nwrote ${args.out}`);
    }
  } finally {
    await s3?.stop();
    await rm(root, { recursive: true, force: true });
  }
}
