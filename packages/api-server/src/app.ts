/**
 * buildApi(): the Fastify app of the REST service, from its dependencies. No environment, no
 * listening: runApi (serve.ts) does those, tests call `inject()` or `listen({ port: 0 })`.
 */
import multipart from '@fastify/multipart';
import rateLimit from '@fastify/rate-limit';
import { BatchRegistry, FoldMetrics } from '@kvfold/jobs';
import type { KvfoldQueues, Redis } from '@kvfold/jobs';
import type { EnqueueOptions } from '@kvfold/producer';
import type { ObjectStore, OpenStoreOptions } from '@kvfold/storage';
import Fastify from 'fastify';
import type { FastifyBaseLogger, FastifyInstance } from 'fastify';
import { apiKeyAuth, presentedKey } from './auth.ts';
import { registerBullBoard } from './bull-board.ts';
import { ApiError, ApiErrorCode, errorHandler, notFoundHandler } from './errors.ts';
import { createMetrics } from './metrics.ts';
import { registerOpenApi } from './openapi.ts';
import { batchRoutes } from './routes/batches.ts';
import { operationRoutes } from './routes/operations.ts';
import { resultRoutes } from './routes/results.ts';

const MiB = 1024 * 1024;

/** Limits of one API instance. */
export interface ApiLimits {
  /** Largest JSON body, bytes (default 1 MiB). */
  readonly bodyBytes?: number;
  /** Largest multipart upload, bytes (default 1 GiB). */
  readonly uploadBytes?: number;
  /** Most files per upload (default 10,000). */
  readonly uploadFiles?: number;
  /** Requests per key (or address) per window (default 600). */
  readonly rateLimitMax?: number;
  /** Rate-limit window, ms (default one minute). */
  readonly rateLimitWindowMs?: number;
  /** Wrong API keys one client address may send per window before it gets 429 (default 10). */
  readonly authFailuresMax?: number;
  /** That window, ms, from the first wrong key (default 15 minutes). */
  readonly authFailureWindowMs?: number;
}

/** Everything the API needs, built by the caller. */
export interface ApiDeps {
  readonly store: ObjectStore;
  readonly queues: KvfoldQueues;
  /** A client for the registry, fold metrics, rate limits and readiness. */
  readonly redis: Redis;
  readonly logger: FastifyBaseLogger;
  readonly apiKeys: readonly string[];
  readonly limits?: ApiLimits;
  /** Where uploads are spooled (default: the OS temp folder). */
  readonly spoolDir?: string;
  /** Retry and retention of the document jobs it enqueues (the producer's defaults otherwise). */
  readonly enqueue?: EnqueueOptions;
  /** Refuse a batch whose model is not there (store options open `s3://` models); off when absent. */
  readonly modelCheck?: { readonly storeOptions?: OpenStoreOptions };
  /** Seconds an ended batch's registry entry stays in Redis (the registry's default otherwise). */
  readonly registryTtlS?: number;
  /** Proxies whose X-Forwarded-For gives the client's address (Fastify's `trustProxy`); none by default. */
  readonly trustProxy?: boolean | string[];
}

/** `trustProxy` as a flag or a comma-separated list of addresses. */
function trustProxyOption(v: ApiDeps['trustProxy']): string | boolean {
  return Array.isArray(v) ? v.join(',') : (v ?? false);
}

/** Builds the app; `await app.ready()` (or listen) before use, `app.close()` after. */
export async function buildApi(deps: ApiDeps): Promise<FastifyInstance> {
  const limits = {
    bodyBytes: deps.limits?.bodyBytes ?? 1 * MiB,
    uploadBytes: deps.limits?.uploadBytes ?? 1024 * MiB,
    uploadFiles: deps.limits?.uploadFiles ?? 10_000,
    rateLimitMax: deps.limits?.rateLimitMax ?? 600,
    rateLimitWindowMs: deps.limits?.rateLimitWindowMs ?? 60_000,
    authFailuresMax: deps.limits?.authFailuresMax ?? 10,
    authFailureWindowMs: deps.limits?.authFailureWindowMs ?? 15 * 60_000,
  };
  const app = Fastify({
    loggerInstance: deps.logger,
    trustProxy: trustProxyOption(deps.trustProxy),
    bodyLimit: limits.bodyBytes,
    // Bad percent-encoding and over-long path parameters are answered before routing: same error shape.
    frameworkErrors: (err, request, reply) => errorHandler(err, request, reply),
  });
  // Validation is zod's (in the handlers, with messages naming fields); route schemas only document.
  app.setValidatorCompiler(() => (data) => ({ value: data }));
  app.setSerializerCompiler(() => (data) => JSON.stringify(data));
  app.setErrorHandler(errorHandler);
  app.setNotFoundHandler(notFoundHandler);
  // Bodies are JSON or multipart; anything else is 415, not a string the spec parser trips over.
  app.removeContentTypeParser('text/plain');

  const registry = new BatchRegistry(deps.redis, { prefix: deps.queues.prefix, ...(deps.registryTtlS ? { endedTtlS: deps.registryTtlS } : {}) });
  const metrics = createMetrics(deps.queues, new FoldMetrics(deps.redis, { prefix: deps.queues.prefix }));
  app.addHook('onResponse', metrics.onResponse);
  app.addHook(
    'onRequest',
    apiKeyAuth(deps.apiKeys, { redis: deps.redis, prefix: deps.queues.prefix, max: limits.authFailuresMax, windowMs: limits.authFailureWindowMs }),
  );

  await app.register(rateLimit, {
    global: true,
    max: limits.rateLimitMax,
    timeWindow: limits.rateLimitWindowMs,
    redis: deps.redis,
    nameSpace: `${deps.queues.prefix}:ratelimit:`,
    skipOnError: true,
    keyGenerator: (request) => (request.apiKeyId ? `key:${request.apiKeyId}` : `ip:${request.ip}:${presentedKey(request) ? 'bad' : 'none'}`),
    errorResponseBuilder: (_request, context) =>
      new ApiError(429, ApiErrorCode.RateLimited, `rate limit exceeded: ${context.max} requests per ${Math.round(limits.rateLimitWindowMs / 1000)} s; retry in ${Math.ceil(context.ttl / 1000)} s`),
  });
  await app.register(multipart, {
    preservePath: true,
    limits: { fileSize: limits.uploadBytes, files: limits.uploadFiles, fields: 10, parts: limits.uploadFiles + 10 },
  });
  await registerOpenApi(app);

  const ctx = {
    store: deps.store,
    queues: deps.queues,
    registry,
    ...(deps.spoolDir ? { spoolDir: deps.spoolDir } : {}),
    ...(deps.enqueue ? { enqueue: deps.enqueue } : {}),
    ...(deps.modelCheck ? { modelCheck: deps.modelCheck } : {}),
  };
  await app.register(batchRoutes, { ctx, uploadBytes: limits.uploadBytes });
  await app.register(resultRoutes, { store: deps.store, registry });
  await app.register(operationRoutes, { redis: deps.redis, store: deps.store, metrics });
  await registerBullBoard(app, deps.queues);
  return app;
}
