/**
 * One way to open the ioredis client the registry and fold metrics use, from a REDIS_URL.
 */
import { Redis } from 'ioredis';
import { redisOptionsFromUrl } from './redis-url.ts';

export type { Redis } from 'ioredis';

/**
 * Opens an ioredis client on `url`. Commands fail after a few retries instead of queueing forever,
 * so an API request answers with an error while Redis is down.
 */
export function createRedis(url: string, options: { readonly lazyConnect?: boolean } = {}): Redis {
  return new Redis({ ...redisOptionsFromUrl(url), maxRetriesPerRequest: 3, lazyConnect: options.lazyConnect ?? false });
}
