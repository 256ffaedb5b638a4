/**
 * API-key authentication: `x-api-key: <key>` or `Authorization: Bearer <key>`, keys from
 * KVFOLD_API_KEYS. Keys are compared as sha256 digests in constant time, so neither the length nor
 * the content of a valid key leaks through timing. The probes (/healthz, /readyz) and the
 * Prometheus scrape (/metrics: counts and totals only, no batch data) are open; everything else,
 * /docs and /admin/queues included, needs a key. With no keys configured, every keyed route is 401.
 *
 * Guessing is bounded: wrong keys are counted per client address in Redis (shared by replicas), and
 * once an address has sent `max` of them within `windowMs` of its first, its wrong keys answer 429
 * with Retry-After until that window ends. A right key still goes through: a client that mistyped
 * its key is not locked out once it sends the right one (keys are long random strings, and the
 * request rate limit bounds what an address may try). The client address is the socket's, or the
 * one a trusted proxy reports (KVFOLD_API_TRUST_PROXY).
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { Redis } from '@kvfold/jobs';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { ApiError, ApiErrorCode } from './errors.ts';

/** Paths answered without a key. */
export const PUBLIC_PATHS: ReadonlySet<string> = new Set(['/healthz', '/readyz', '/metrics']);

declare module 'fastify' {
  interface FastifyRequest {
    /** Short, non-secret id of the key the request used (for rate limiting and logs). */
    apiKeyId?: string;
  }
}

const digest = (key: string) => createHash('sha256').update(key).digest();

/** The key a request carries, if any. */
export function presentedKey(request: FastifyRequest): string | undefined {
  const header = request.headers['x-api-key'];
  if (typeof header === 'string' && header !== '') return header;
  const auth = request.headers.authorization;
  const match = typeof auth === 'string' ? /^Bearer\s+(\S+)\s*$/i.exec(auth) : null;
  return match?.[1];
}

/** How many wrong keys one client address may send per window. */
export interface AuthFailureLimit {
  readonly redis: Redis;
  /** Redis key prefix (the queue prefix). */
  readonly prefix: string;
  /** Wrong keys an address may send before it is refused. */
  readonly max: number;
  /** The window, counted from the first wrong key, ms. */
  readonly windowMs: number;
}

/** An onRequest hook accepting `keys`, refusing addresses that sent too many wrong ones. */
export function apiKeyAuth(keys: readonly string[], failures?: AuthFailureLimit) {
  const digests = keys.map(digest);
  return async function authenticate(request: FastifyRequest, reply: FastifyReply): Promise<void> {
    const path = request.url.split('?')[0] ?? '';
    if (PUBLIC_PATHS.has(path)) return;
    const key = presentedKey(request);
    if (key === undefined) {
      throw new ApiError(401, ApiErrorCode.Unauthorized, 'missing API key: send it as x-api-key or Authorization: Bearer <key>');
    }
    const d = digest(key);
    if (digests.some((known) => timingSafeEqual(known, d))) {
      request.apiKeyId = d.toString('hex').slice(0, 12);
      return;
    }
    const counter = failures ? new FailureCounter(failures, request) : null;
    const lockedMs = (await counter?.lockedForMs()) ?? 0;
    if (lockedMs > 0 && failures) {
      const seconds = Math.ceil(lockedMs / 1000);
      reply.header('retry-after', String(seconds));
      throw new ApiError(
        429,
        ApiErrorCode.RateLimited,
        `too many wrong API keys from ${request.ip}: ${failures.max} within ${Math.round(failures.windowMs / 1000)} s (KVFOLD_API_AUTH_FAILURES); retry in ${seconds} s with a key from KVFOLD_API_KEYS`,
      );
    }
    await counter?.record();
    throw new ApiError(401, ApiErrorCode.Unauthorized, 'API key not accepted (it is not one of KVFOLD_API_KEYS)');
  };
}

/**
 * One address's count of wrong keys in Redis: a fixed window that starts at the first wrong key.
 * A Redis that does not answer lets requests through (logged), as the request rate limit does.
 */
class FailureCounter {
  private readonly key: string;
  constructor(
    private readonly limit: AuthFailureLimit,
    private readonly request: FastifyRequest,
  ) {
    this.key = `${limit.prefix}:auth-failures:${request.ip}`;
  }

  /** Milliseconds this address stays refused; 0 while it is under the limit. */
  async lockedForMs(): Promise<number> {
    try {
      const [[, count], [, ttl]] = (await this.limit.redis.multi().get(this.key).pttl(this.key).exec()) as [[unknown, string | null], [unknown, number]];
      return Number(count ?? 0) >= this.limit.max && ttl > 0 ? ttl : 0;
    } catch (err) {
      this.request.log.warn({ err }, 'wrong-key limit not checked: Redis did not answer');
      return 0;
    }
  }

  async record(): Promise<void> {
    try {
      await this.limit.redis.multi().set(this.key, '0', 'PX', this.limit.windowMs, 'NX').incr(this.key).exec();
    } catch (err) {
      this.request.log.warn({ err }, 'wrong API key not counted: Redis did not answer');
    }
  }
}
