/**
 * The API's configuration, from the environment, validated at start. The shared variables
 * (REDIS_URL, KVFOLD_STORE, S3 settings, KVFOLD_API_KEYS, KVFOLD_QUEUE_PREFIX, LOG_LEVEL) come from
 * @kvfold/jobs' loadEnv; the API's own are below. This is the only file of the app that reads
 * `process.env`.
 */
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { envInteger, envOptional, loadEnvWith } from '@kvfold/jobs';
import type { Env } from '@kvfold/jobs';
import { z } from 'zod';

const MiB = 1024 * 1024;

/** Variables only the API reads. */
export const ApiEnvSchema = z.object({
  /** TCP port to listen on. */
  KVFOLD_API_PORT: envInteger(0, 8080),
  /** Address to bind; 0.0.0.0 in a container, loopback by default. */
  KVFOLD_API_HOST: envOptional(z.string().default('127.0.0.1')),
  /** Largest JSON request body, bytes (batch specs are small). */
  KVFOLD_API_BODY_LIMIT: envInteger(1024, 1 * MiB),
  /** Largest multipart upload (all files together), bytes. */
  KVFOLD_API_UPLOAD_LIMIT: envInteger(1024, 1024 * MiB),
  /** Most files in one multipart upload (a bigger corpus goes up as an archive). */
  KVFOLD_API_UPLOAD_MAX_FILES: envInteger(1, 10_000),
  /** Requests per minute per API key (or per address, for requests without a valid key). */
  KVFOLD_API_RATE_LIMIT: envInteger(1, 600),
  /** Wrong API keys one client address may send within KVFOLD_API_AUTH_FAILURE_WINDOW_S before it gets 429. */
  KVFOLD_API_AUTH_FAILURES: envInteger(1, 10),
  /** Seconds, from an address's first wrong key, that its wrong keys are counted (and it stays refused once over). */
  KVFOLD_API_AUTH_FAILURE_WINDOW_S: envInteger(1, 900),
  /** Seconds a completed document job stays in Redis (Bull Board) before removal; results stay in the store. */
  KVFOLD_JOB_KEEP_COMPLETED_S: envInteger(0, 24 * 3600),
  /** Seconds a failed document job stays in Redis; the batch keeps the failure reason regardless. */
  KVFOLD_JOB_KEEP_FAILED_S: envInteger(0, 7 * 24 * 3600),
  /**
   * Check each new batch's model before enqueueing it: a local folder must exist on this host, an
   * `s3://` model must be pushed, and either must hold a decoder. Set false when the API cannot see
   * the workers' model folders (then a wrong path fails every document instead of the request).
   */
  KVFOLD_API_CHECK_MODEL: envOptional(z.enum(['true', 'false'], { error: 'must be true or false' }).default('true')).transform((v) => v === 'true'),
  /**
   * Which proxies' X-Forwarded-For the API believes for a client's address (the wrong-key limit and
   * the rate limit count per address): unset or `false`, none (the socket's address); `true`, any;
   * otherwise a comma-separated list of addresses or CIDR ranges (an ingress's). Set it behind an
   * ingress, or every client shares the ingress's address.
   */
  KVFOLD_API_TRUST_PROXY: envOptional(z.string().optional()).transform(parseTrustProxy),
  /** Folder where uploads are spooled before ingest; the OS temp folder when unset. */
  KVFOLD_API_SPOOL_DIR: envOptional(z.string().optional()),
});

/** KVFOLD_API_TRUST_PROXY as Fastify's `trustProxy` takes it. */
function parseTrustProxy(value: string | undefined): boolean | string[] {
  const v = value?.trim() ?? '';
  if (v === '' || v === 'false') return false;
  if (v === 'true') return true;
  return v.split(',').map((a) => a.trim()).filter((a) => a !== '');
}

/** The API's parsed configuration. */
export type ApiEnv = Env & z.output<typeof ApiEnvSchema> & { readonly KVFOLD_STORE: string };

/**
 * Parses the environment. KVFOLD_STORE defaults to `.kvfold/store` under the working folder (the
 * same embedded store `kvfold run` uses). Throws `KVF_ENV_INVALID` listing every bad variable.
 */
export function loadApiEnv(source: Readonly<Record<string, string | undefined>> = process.env, cwd = process.cwd()): ApiEnv {
  const env = loadEnvWith(ApiEnvSchema, source);
  return { ...env, KVFOLD_STORE: env.KVFOLD_STORE ?? pathToFileURL(resolve(cwd, '.kvfold/store')).href };
}
