/**
 * Test support for any package's tests (`@kvfold/jobs/testing`).
 */
import { deriveBatchId } from '@kvfold/contract';
import type { BatchRecord, BatchSpec, CorpusIndex } from '@kvfold/contract';
import type { KvfoldQueues } from './queues.ts';
import type { Redis } from './redis-client.ts';

/**
 * Removes what a test left under its queue prefix and closes the queues: every job of both queues,
 * and, given `redis`, every other key under the prefix (registry, metrics, rate limits).
 */
export async function dropTestQueues(queues: KvfoldQueues, redis?: Redis): Promise<void> {
  await queues.documents.obliterate({ force: true });
  await queues.batches.obliterate({ force: true });
  await queues.close();
  if (!redis) return;
  const keys = await redis.keys(`${queues.prefix}:*`);
  if (keys.length > 0) await redis.del(...keys);
}

/** A redis-server of a test's own, which it may flush or kill. */
export interface PrivateRedis {
  readonly url: string;
  stop(): Promise<void>;
}

/** Where the Redis binary is (override with REDIS_SERVER). */
const REDIS_SERVER = process.env.REDIS_SERVER ?? '/usr/bin/redis-server';

/**
 * Starts an in-memory redis-server (no RDB, no AOF) on a free loopback port and resolves once it
 * answers PING; `stop()` kills it.
 */
export async function startPrivateRedis(): Promise<PrivateRedis> {
  const { createServer } = await import('node:net');
  const { spawn } = await import('node:child_process');
  const { connect } = await import('node:net');
  const port = await new Promise<number>((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => resolve(typeof address === 'object' && address ? address.port : 0));
    });
  });
  const child = spawn(REDIS_SERVER, ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const url = `redis://127.0.0.1:${port}`;
  // Ready once it accepts a connection and answers PING (the test's own timeout bounds the wait).
  for (;;) {
    const pong = await new Promise<boolean>((resolve) => {
      const socket = connect(port, '127.0.0.1', () => socket.write('PING\r\n'));
      socket.once('data', (data) => {
        socket.destroy();
        resolve(data.toString().startsWith('+PONG'));
      });
      socket.once('error', () => resolve(false));
    });
    if (pong) break;
    if (child.exitCode !== null) throw new Error(`${REDIS_SERVER} exited with code ${child.exitCode} before answering on port ${port}`);
    await new Promise((r) => setTimeout(r, 20));
  }
  return {
    url,
    async stop() {
      child.kill('SIGKILL');
      await exited;
    },
  };
}

/** The record the API writes for a batch of `spec` over one uploaded corpus (ingest counts left at 0). */
export function batchRecordOf(spec: BatchSpec, index: CorpusIndex, indexKey: string): BatchRecord {
  return {
    id: deriveBatchId([index.corpusId], spec),
    spec,
    createdAt: new Date().toISOString(),
    documents: index.documents.length,
    totalBytes: index.documents.reduce((n, d) => n + d.bytes, 0),
    corpusIds: [index.corpusId],
    corpus: [indexKey],
    ingest: { files: 0, documents: 0, bytes: 0, ignored: 0, skipped: 0, refused: 0 },
  };
}
