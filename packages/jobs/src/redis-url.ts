/**
 * Redis connection options from a `redis://` / `rediss://` URL (the REDIS_URL form).
 */
import type { RedisOptions } from 'bullmq';
import { JobsError, JobsErrorCode } from './errors.ts';

/** Port Redis listens on when the URL names none. */
export const DEFAULT_REDIS_PORT = 6379;

/** The URL with any password replaced by `***`, for messages and logs. */
export function redactRedisUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return parsed.toString().replace(/\/$/, '');
  } catch {
    return url.replace(/\/\/[^@/]*@/, '//***@');
  }
}

/**
 * Parses `redis://[user[:password]@]host[:port][/db]` (or `rediss://` for TLS) into options for
 * BullMQ and ioredis. Throws `KVF_REDIS_URL_INVALID` naming the (redacted) URL otherwise.
 */
export function redisOptionsFromUrl(url: string): RedisOptions {
  const fail = (why: string): never => {
    throw new JobsError(
      JobsErrorCode.RedisUrlInvalid,
      `REDIS_URL ${redactRedisUrl(url)} is not usable: ${why} (expected redis://[user:password@]host[:port][/db])`,
    );
  };
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return fail('not a URL');
  }
  if (parsed.protocol !== 'redis:' && parsed.protocol !== 'rediss:') fail(`scheme ${parsed.protocol} is not redis: or rediss:`);
  if (!parsed.hostname) fail('no host');
  const port = parsed.port ? Number(parsed.port) : DEFAULT_REDIS_PORT;
  const dbText = parsed.pathname.replace(/^\//, '');
  const db = dbText === '' ? 0 : Number(dbText);
  if (!Number.isInteger(db) || db < 0) fail(`database "${dbText}" is not a non-negative integer`);
  const options: RedisOptions = {
    // IPv6 literals come back bracketed from URL; ioredis wants them bare.
    host: parsed.hostname.replace(/^\[(.*)\]$/, '$1'),
    port,
    db,
  };
  if (parsed.username) options.username = decodeURIComponent(parsed.username);
  if (parsed.password) options.password = decodeURIComponent(parsed.password);
  if (parsed.protocol === 'rediss:') options.tls = {};
  return options;
}
