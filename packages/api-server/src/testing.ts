/**
 * Test support: an API instance on real Redis (its own `{test-<uuid>}` prefix) and a real object
 * store, torn down completely after. Used by the API's tests only.
 */
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BatchRegistry, createQueues, createRedis, redisOptionsFromUrl } from '@kvfold/jobs';
import { DocumentResult } from '@kvfold/contract';
import type { DocumentJob } from '@kvfold/contract';
import type { KvfoldQueues, Redis } from '@kvfold/jobs';
import { dropTestQueues } from '@kvfold/jobs/testing';
import type { EnqueueOptions } from '@kvfold/producer';
import { FsObjectStore } from '@kvfold/storage';
import type { ObjectStore } from '@kvfold/storage';
import type { FastifyInstance } from 'fastify';
import { pino } from 'pino';
import { buildApi } from './app.ts';
import type { ApiDeps, ApiLimits } from './app.ts';

export const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
export const API_KEY = 'test-key-0123456789';

/** A running test API and what it is built on. */
export interface TestApi {
  readonly app: FastifyInstance;
  readonly store: ObjectStore;
  readonly queues: KvfoldQueues;
  readonly redis: Redis;
  readonly registry: BatchRegistry;
  readonly dir: string;
  readonly headers: { readonly 'x-api-key': string };
  close(): Promise<void>;
}

/** Builds an API over a fresh prefix (on REDIS_URL unless `redisUrl` is given) and (unless given) a fresh FsObjectStore. */
export async function startTestApi(
  options: { limits?: ApiLimits; store?: ObjectStore; enqueue?: EnqueueOptions; modelCheck?: ApiDeps['modelCheck']; redisUrl?: string; trustProxy?: ApiDeps['trustProxy'] } = {},
): Promise<TestApi> {
  const dir = await mkdtemp(join(tmpdir(), 'kvfold-api-test-'));
  const store = options.store ?? new FsObjectStore(join(dir, 'store'));
  const redisUrl = options.redisUrl ?? REDIS_URL;
  const redis = createRedis(redisUrl);
  const queues = createQueues(redisOptionsFromUrl(redisUrl), `{test-${randomUUID()}}`);
  const app = await buildApi({
    store,
    queues,
    redis,
    logger: pino({ level: process.env.KVFOLD_TEST_LOG ?? 'silent' }),
    apiKeys: [API_KEY, 'second-key'],
    spoolDir: dir,
    ...(options.limits ? { limits: options.limits } : {}),
    ...(options.enqueue ? { enqueue: options.enqueue } : {}),
    ...(options.modelCheck ? { modelCheck: options.modelCheck } : {}),
    ...(options.trustProxy !== undefined ? { trustProxy: options.trustProxy } : {}),
  });
  await app.ready();
  return {
    app,
    store,
    queues,
    redis,
    registry: new BatchRegistry(redis, { prefix: queues.prefix }),
    dir,
    headers: { 'x-api-key': API_KEY },
    async close() {
      await app.close();
      await dropTestQueues(queues, redis);
      await redis.quit();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** A multipart body with `files` (name -> bytes) and an optional `spec` field, for inject(). */
export function multipartBody(files: Record<string, string | Uint8Array>, spec?: unknown): { payload: Buffer; headers: Record<string, string> } {
  const boundary = `----kvfold${randomUUID()}`;
  const parts: Buffer[] = [];
  if (spec !== undefined) {
    parts.push(Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="spec"\r\n\r\n${typeof spec === 'string' ? spec : JSON.stringify(spec)}\r\n`));
  }
  for (const [name, bytes] of Object.entries(files)) {
    parts.push(Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="${name}"\r\nContent-Type: application/octet-stream\r\n\r\n`));
    parts.push(Buffer.from(bytes), Buffer.from('\r\n'));
  }
  parts.push(Buffer.from(`--${boundary}--\r\n`));
  return { payload: Buffer.concat(parts), headers: { 'content-type': `multipart/form-data; boundary=${boundary}` } };
}

/** A DocumentResult for `job` as a worker would write it (tokens = bytes), for tests that play the worker. */
export function sampleResult(job: DocumentJob, status: 'completed' | 'failed' = 'completed'): DocumentResult {
  return DocumentResult.parse({
    batchId: job.batchId,
    docId: job.docId,
    paths: job.paths,
    status,
    tokens: job.bytes,
    steps: 1,
    chunkSize: job.fold.chunkSize,
    timings: { loadMs: 1, foldMs: 2, generateMs: 3, totalMs: 6, tokensPerSecond: 100 },
    kvBytes: 128,
    answers: [{ query: 'What is inside?', text: 'words', tokenIds: [1, 2] }],
    resumedFromStep: 0,
    checkpoint: { segments: 0, bytes: 0 },
    attempts: 1,
  });
}
