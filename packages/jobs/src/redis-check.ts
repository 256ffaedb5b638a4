/**
 * Start-up check that Redis answers, failing fast with a message that names the URL and the fix,
 * instead of a process that hangs retrying forever.
 */
import { Redis } from 'ioredis';
import { JobsError, JobsErrorCode } from './errors.ts';
import { redactRedisUrl, redisOptionsFromUrl } from './redis-url.ts';

/** How long to wait for a PONG before declaring Redis unreachable. */
export const DEFAULT_REDIS_CHECK_TIMEOUT_MS = 3_000;

/**
 * Connects to `url`, sends PING and disconnects. Resolves when Redis answers within `timeoutMs`;
 * otherwise throws `KVF_REDIS_UNREACHABLE`, e.g. `Redis at redis://127.0.0.1:6390 is not reachable:
 * connect ECONNREFUSED 127.0.0.1:6390; start Redis or set REDIS_URL`.
 */
export async function checkRedis(url: string, timeoutMs = DEFAULT_REDIS_CHECK_TIMEOUT_MS): Promise<void> {
  const options = redisOptionsFromUrl(url);
  const client = new Redis({
    ...options,
    lazyConnect: true,
    connectTimeout: timeoutMs,
    // One attempt only: no reconnect loop, no queued commands.
    retryStrategy: () => null,
    maxRetriesPerRequest: 0,
    enableOfflineQueue: false,
  });
  let lastError: unknown;
  client.on('error', (err: unknown) => {
    lastError = err;
  });
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
  });
  try {
    await Promise.race([
      (async () => {
        await client.connect();
        await client.ping();
      })(),
      timeout,
    ]);
  } catch (err) {
    const cause = lastError ?? err;
    const why = cause instanceof Error ? cause.message : String(cause);
    throw new JobsError(
      JobsErrorCode.RedisUnreachable,
      `Redis at ${redactRedisUrl(url)} is not reachable: ${why}; start Redis or set REDIS_URL`,
      { cause },
    );
  } finally {
    clearTimeout(timer);
    client.disconnect();
  }
}
