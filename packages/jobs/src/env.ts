/**
 * Environment configuration shared by the apps: one zod schema, a comment on every variable.
 * This is the only file that touches `process.env`, and only as the default of `loadEnv`'s
 * parameter. Empty strings count as unset.
 */
import { z } from 'zod';
import { JobsError, JobsErrorCode } from './errors.ts';
import { DEFAULT_ENDED_TTL_S } from './batch-registry.ts';
import { DEFAULT_QUEUE_PREFIX } from './queues.ts';
import { redisOptionsFromUrl } from './redis-url.ts';
import { formatIssuePath } from '@kvfold/contract';

const optional = <T extends z.ZodType>(schema: T) =>
  z.preprocess((v) => (typeof v === 'string' && v.trim() === '' ? undefined : v), schema);

const booleanText = z
  .enum(['true', 'false', '1', '0', 'yes', 'no'], { error: 'must be true or false' })
  .transform((v) => v === 'true' || v === '1' || v === 'yes');

const positiveIntText = z
  .string()
  .regex(/^[1-9][0-9]*$/, { error: 'must be an integer >= 1' })
  .transform((v) => Number(v));

/** The variables KV-Fold reads, parsed. */
export const EnvSchema = z
  .object({
    /** Redis for the BullMQ queues: `redis://[user:password@]host[:port][/db]`, `rediss://` for TLS. */
    REDIS_URL: optional(
      z
        .string()
        .refine(
          (url) => {
            try {
              redisOptionsFromUrl(url);
              return true;
            } catch {
              return false;
            }
          },
          { error: 'must be redis://[user:password@]host[:port][/db] or rediss://...' },
        )
        .default('redis://127.0.0.1:6379'),
    ),
    /** Object store for corpora, checkpoints and results: `s3://bucket/prefix` or `file:///abs/dir`. */
    KVFOLD_STORE: optional(
      z.string().regex(/^(s3|file):\/\/.+/, { error: 'must be s3://bucket[/prefix] or file:///path' }).optional(),
    ),
    /** S3 endpoint for S3-compatible servers (MinIO, R2, ...); unset for AWS. */
    KVFOLD_S3_ENDPOINT: optional(z.url({ error: 'must be a URL such as http://127.0.0.1:9000' }).optional()),
    /** S3 region. */
    KVFOLD_S3_REGION: optional(z.string().default('us-east-1')),
    /** Path-style addressing (`endpoint/bucket/key`), which MinIO and most local servers need. */
    KVFOLD_S3_FORCE_PATH_STYLE: optional(booleanText.default(false)),
    /**
     * Whether the S3 endpoint enforces If-None-Match / If-Match on writes (AWS S3, MinIO and R2
     * do). Set false for servers that ignore them; checkpoint fencing then relies on its
     * generation re-read alone.
     */
    KVFOLD_S3_CONDITIONAL_WRITES: optional(booleanText.default(true)),
    /** S3 access key id; with AWS_SECRET_ACCESS_KEY, or both unset to use the SDK's default chain. */
    AWS_ACCESS_KEY_ID: optional(z.string().optional()),
    /** S3 secret key; see AWS_ACCESS_KEY_ID. */
    AWS_SECRET_ACCESS_KEY: optional(z.string().optional()),
    /** API keys accepted by the REST service, comma-separated; empty means the API refuses every request. */
    KVFOLD_API_KEYS: optional(
      z
        .string()
        .default('')
        .transform((v) =>
          v
            .split(',')
            .map((k) => k.trim())
            .filter((k) => k !== ''),
        ),
    ),
    /** BullMQ key prefix; keep a `{hash tag}` for Redis Cluster (see DEFAULT_QUEUE_PREFIX). */
    KVFOLD_QUEUE_PREFIX: optional(
      z
        .string()
        .regex(/^[^:\s]+$/, { error: 'must not contain ":" or spaces' })
        .default(DEFAULT_QUEUE_PREFIX),
    ),
    /** pino log level. */
    LOG_LEVEL: optional(
      z
        .enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'], {
          error: 'must be one of fatal, error, warn, info, debug, trace, silent',
        })
        .default('info'),
    ),
    /**
     * Seconds an ended batch's registry entry stays in Redis (default a week); afterwards it is
     * rebuilt from the object store when asked for. The API and the workers should agree on it.
     */
    KVFOLD_REGISTRY_TTL_S: envInteger(1, DEFAULT_ENDED_TTL_S),
    /** Documents a worker process folds at once; one per GPU is the sane value. */
    KVFOLD_WORKER_CONCURRENCY: optional(positiveIntText.default(1)),
    /** Execution provider for inference. */
    KVFOLD_DEVICE: optional(
      z.enum(['cpu', 'webgpu', 'cuda'], { error: 'must be one of cpu, webgpu, cuda' }).default('cpu'),
    ),
    /** Local folder where models fetched from the store are cached; unset means the app's default. */
    KVFOLD_MODEL_CACHE: optional(z.string().optional()),
  })
  .superRefine((env, ctx) => {
    if ((env.AWS_ACCESS_KEY_ID === undefined) !== (env.AWS_SECRET_ACCESS_KEY === undefined)) {
      const missing = env.AWS_ACCESS_KEY_ID === undefined ? 'AWS_ACCESS_KEY_ID' : 'AWS_SECRET_ACCESS_KEY';
      ctx.addIssue({ code: 'custom', path: [missing], message: 'must be set together with its pair, or both unset' });
    }
  });

/** Parsed environment. */
export type Env = z.output<typeof EnvSchema>;

/**
 * Parses the environment (`process.env` by default). Throws one `KVF_ENV_INVALID` error that lists
 * every bad variable, one per line.
 */
export function loadEnv(source: Readonly<Record<string, string | undefined>> = process.env): Env {
  const result = EnvSchema.safeParse(source);
  if (result.success) return result.data;
  const lines = result.error.issues.map((issue) => `  ${formatIssuePath(issue.path)}: ${issue.message}`);
  throw new JobsError(JobsErrorCode.EnvInvalid, `invalid environment:\n${lines.join('\n')}`, { cause: result.error });
}

/** An integer variable written in decimal, at least `min`, with a default; empty counts as unset. */
export function envInteger(min: number, fallback: number) {
  return optional(
    z
      .string()
      .regex(/^[0-9]+$/, { error: `must be an integer >= ${min}` })
      .transform(Number)
      .refine((n) => n >= min, { error: `must be an integer >= ${min}` })
      .default(fallback),
  );
}

/** An optional variable: empty counts as unset. */
export function envOptional<T extends z.ZodType>(schema: T) {
  return optional(schema);
}

/**
 * Parses the shared variables and an app's own (`schema`) together, and throws one
 * `KVF_ENV_INVALID` error listing every bad variable of both.
 */
export function loadEnvWith<S extends z.ZodType>(schema: S, source: Readonly<Record<string, string | undefined>> = process.env): Env & z.output<S> {
  const shared = EnvSchema.safeParse(source);
  const own = schema.safeParse(source);
  if (shared.success && own.success) return { ...shared.data, ...(own.data as object) } as Env & z.output<S>;
  const issues = [...(shared.error?.issues ?? []), ...(own.error?.issues ?? [])];
  const lines = issues.map((issue) => `  ${formatIssuePath(issue.path)}: ${issue.message}`);
  throw new JobsError(JobsErrorCode.EnvInvalid, `invalid environment:\n${lines.join('\n')}`);
}
