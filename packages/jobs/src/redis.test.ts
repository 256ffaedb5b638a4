import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { createServer } from 'node:net';
import { describe, it } from 'node:test';
import { JobsError } from './errors.ts';
import { QUEUE_NAMES, createQueues } from './queues.ts';
import { checkRedis } from './redis-check.ts';
import { redactRedisUrl, redisOptionsFromUrl } from './redis-url.ts';
import { dropTestQueues } from './testing.ts';

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';

/** A port nothing listens on: bind an ephemeral one, then release it. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  assert.ok(address && typeof address === 'object');
  return address.port;
}

describe('redis url', () => {
  it('parses host, port, credentials, db and TLS', () => {
    assert.deepEqual(redisOptionsFromUrl('redis://127.0.0.1:6390'), { host: '127.0.0.1', port: 6390, db: 0 });
    assert.deepEqual(redisOptionsFromUrl('rediss://u:p%40ss@h/3'), {
      host: 'h',
      port: 6379,
      db: 3,
      username: 'u',
      password: 'p@ss',
      tls: {},
    });
  });

  it('refuses non-redis URLs with a coded error and hides passwords', () => {
    assert.throws(() => redisOptionsFromUrl('http://x'), (e: unknown) => e instanceof JobsError && e.code === 'KVF_REDIS_URL_INVALID');
    assert.equal(redactRedisUrl('redis://u:secret@h:1'), 'redis://u:***@h:1');
  });
});

describe('checkRedis', () => {
  it('resolves against the running Redis', async () => {
    await checkRedis(REDIS_URL);
  });

  // A check that retried forever (ioredis's default) would hang: the test's timeout is the bar.
  it('fails fast with a message naming the URL on a closed port', { timeout: 10_000 }, async () => {
    const url = `redis://127.0.0.1:${await closedPort()}`;
    await assert.rejects(checkRedis(url), (err: unknown) => {
      assert.ok(err instanceof JobsError);
      assert.equal(err.code, 'KVF_REDIS_UNREACHABLE');
      assert.match(err.message, new RegExp(`^Redis at ${url} is not reachable: .*ECONNREFUSED.*; start Redis or set REDIS_URL$`));
      return true;
    });
  });

  it('times out on a server that never answers', { timeout: 10_000 }, async () => {
    const sockets = new Set<import('node:net').Socket>();
    const server = createServer((socket) => {
      sockets.add(socket);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const address = server.address();
    assert.ok(address && typeof address === 'object');
    try {
      await assert.rejects(checkRedis(`redis://127.0.0.1:${address.port}`, 300), /is not reachable: .*; start Redis/);
      assert.ok(sockets.size >= 1, 'the check reached the silent server');
    } finally {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });
});

describe('createQueues', () => {
  it('creates both queues and a flow producer under the prefix', async () => {
    const prefix = `test-${randomUUID()}`;
    const queues = createQueues(redisOptionsFromUrl(REDIS_URL), prefix);
    try {
      assert.equal(queues.documents.name, QUEUE_NAMES.documents);
      assert.equal(queues.batches.name, QUEUE_NAMES.batches);
      await queues.documents.add('probe', { x: 1 }, { jobId: 'probe-1' });
      assert.equal(await queues.documents.getJobCountByTypes('waiting', 'prioritized'), 1);
      const node = await queues.flow.add({
        name: 'parent',
        queueName: QUEUE_NAMES.batches,
        opts: { jobId: 'p1' },
        children: [{ name: 'child', queueName: QUEUE_NAMES.documents, opts: { jobId: 'c1' } }],
      });
      assert.equal(node.job.id, 'p1');
      assert.equal(await queues.batches.getJobCountByTypes('waiting-children'), 1);
    } finally {
      await dropTestQueues(queues);
    }
  });
});
