/**
 * API-key authentication: `x-api-key: <key>` or `Authorization: Bearer <key>`, keys from
 * KVFOLD_API_KEYS. Keys are compared as sha256 digests in constant time, so neither the length nor
 * the content of a valid key leaks through timing. The probes (/healthz, /readyz) and the
 * Prometheus scrape (/metrics: counts and totals only, no batch data) are open; everything else,
 * /docs and /admin/queues included, needs a key. With no keys configured, every keyed route is 401.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
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

/** An onRequest hook accepting `keys`. */
export function apiKeyAuth(keys: readonly string[]) {
  const digests = keys.map(digest);
  return async function authenticate(request: FastifyRequest, _reply: FastifyReply): Promise<void> {
    const path = request.url.split('?')[0] ?? '';
    if (PUBLIC_PATHS.has(path)) return;
    const key = presentedKey(request);
    if (key === undefined) {
      throw new ApiError(401, ApiErrorCode.Unauthorized, 'missing API key: send it as x-api-key or Authorization: Bearer <key>');
    }
    const d = digest(key);
    if (!digests.some((known) => timingSafeEqual(known, d))) {
      throw new ApiError(401, ApiErrorCode.Unauthorized, 'API key not accepted (it is not one of KVFOLD_API_KEYS)');
    }
    request.apiKeyId = d.toString('hex').slice(0, 12);
  };
}
