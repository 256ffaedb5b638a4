/**
 * Test support for any package's tests (`@kvfold/jobs/testing`).
 */
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
