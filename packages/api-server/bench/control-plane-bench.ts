/**
 * Control-plane benchmark (not a test): enqueue a generated corpus of small documents through the
 * REST API on a private redis-server and a filesystem store, then time what operators call often.
 *
 *     pnpm bench:control-plane [--documents 10000] [--calls 200] [--out bench-results/control-plane.json]
 *
 * Reports: the enqueue request's time (upload, ingest, store writes, one flow in Redis), Redis
 * memory per document (INFO memory used_memory before and after), the median and p99 latency of
 * `GET /v1/batches/:id` and `GET /v1/batches` over `--calls` calls each, and the time of one cancel
 * of the whole batch. No worker runs, so every document stays waiting: the worst case for status.
 */
import { openAsBlob } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { parseArgs } from 'node:util';
import { createQueues, createRedis, redisOptionsFromUrl } from '@kvfold/jobs';
import { startPrivateRedis } from '@kvfold/jobs/testing';
import { FsObjectStore } from '@kvfold/storage';
import { pino } from 'pino';
import { buildApi } from '../src/app.ts';

const { values } = parseArgs({
  options: {
    documents: { type: 'string', default: '10000' },
    calls: { type: 'string', default: '200' },
    out: { type: 'string' },
  },
});
const documents = Number(values.documents);
const calls = Number(values.calls);
const KEY = 'bench-key';

/** used_memory of INFO memory, bytes. */
async function usedMemory(redis: ReturnType<typeof createRedis>): Promise<number> {
  const info = await redis.info('memory');
  return Number(/^used_memory:(\d+)/m.exec(info)?.[1] ?? Number.NaN);
}

/** Median and p99 of `calls` sequential runs of `fn`, ms. */
async function latency(fn: () => Promise<void>): Promise<{ medianMs: number; p99Ms: number }> {
  const times: number[] = [];
  for (let i = 0; i < calls; i++) {
    const t = performance.now();
    await fn();
    times.push(performance.now() - t);
  }
  times.sort((a, b) => a - b);
  const at = (q: number) => Math.round((times[Math.min(times.length - 1, Math.floor(q * times.length))] ?? 0) * 100) / 100;
  return { medianMs: at(0.5), p99Ms: at(0.99) };
}

async function expectOk(response: Response, what: string): Promise<Response> {
  if (!response.ok) throw new Error(`${what} answered HTTP ${response.status}: ${await response.text()}`);
  return response;
}

const dir = await mkdtemp(join(tmpdir(), 'kvfold-control-plane-'));
const redisServer = await startPrivateRedis();
const redis = createRedis(redisServer.url);
const queues = createQueues(redisOptionsFromUrl(redisServer.url), '{bench}');
const app = await buildApi({
  store: new FsObjectStore(join(dir, 'store')),
  queues,
  redis,
  logger: pino({ level: 'silent' }),
  apiKeys: [KEY],
  spoolDir: dir,
  limits: { rateLimitMax: 1_000_000 },
});
try {
  const base = await app.listen({ port: 0, host: '127.0.0.1' });
  const headers = { 'x-api-key': KEY };
  const corpus = join(dir, 'corpus.jsonl');
  await writeFile(corpus, Array.from({ length: documents }, (_, i) => JSON.stringify({ path: `docs/${i}.txt`, text: `Document ${i}: a small text for the control plane.\n` })).join('\n'));

  const before = await usedMemory(redis);
  const form = new FormData();
  form.append('spec', JSON.stringify({ model: 'file:///models/none', queries: ['What is here?'] }));
  form.append('file', await openAsBlob(corpus), 'corpus.jsonl');
  const t0 = performance.now();
  const created = (await (await expectOk(await fetch(`${base}/v1/batches`, { method: 'POST', headers, body: form }), 'enqueue')).json()) as { id: string; documents: number };
  const enqueueMs = Math.round(performance.now() - t0);
  const after = await usedMemory(redis);
  if (created.documents !== documents) throw new Error(`the batch has ${created.documents} documents, expected ${documents}`);

  const status = await latency(async () => {
    await (await expectOk(await fetch(`${base}/v1/batches/${created.id}`, { headers }), 'status')).arrayBuffer();
  });
  const list = await latency(async () => {
    await (await expectOk(await fetch(`${base}/v1/batches`, { headers }), 'batches')).arrayBuffer();
  });
  const t1 = performance.now();
  const cancelled = (await (await expectOk(await fetch(`${base}/v1/batches/${created.id}/cancel`, { method: 'POST', headers }), 'cancel')).json()) as { removed: number };
  const cancelMs = Math.round(performance.now() - t1);

  const report = {
    documents,
    calls,
    enqueueMs,
    documentsPerSecond: Math.round((documents / enqueueMs) * 1000),
    redisBytesPerDocument: Math.round((after - before) / documents),
    status,
    batches: list,
    cancel: { ms: cancelMs, removed: cancelled.removed },
  };
  process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
  if (values.out) {
    await mkdir(dirname(values.out), { recursive: true });
    await writeFile(values.out, `${JSON.stringify(report, null, 2)}\n`);
  }
} finally {
  await app.close();
  await queues.close();
  redis.disconnect();
  await redisServer.stop();
  await rm(dir, { recursive: true, force: true });
}
