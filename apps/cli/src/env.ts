/**
 * The CLI's environment, and the only module of the CLI that reads `process.env`: the shared schema
 * (packages/jobs/src/env.ts) plus the CLI's own variables below, parsed once when a command first
 * asks (the command tree itself starts without it, so `kvfold --help` stays fast).
 */
import { type Env, envOptional, loadEnvWith } from '@kvfold/jobs';
import { DEFAULT_API_URL } from '@kvfold/contract/defaults';
import { z } from 'zod';

const CliEnvSchema = z.object({
  /** The REST API of `enqueue`, `status`, `batches`, `results`, `cancel`, `retry` (`--api` overrides). */
  KVFOLD_API_URL: envOptional(z.url({ error: 'must be a URL such as http://127.0.0.1:8080' }).default(DEFAULT_API_URL)),
  /** The API key those commands send (`--api-key` overrides). */
  KVFOLD_API_KEY: envOptional(z.string().optional()),
  /** Any value but empty, 0 or false: errors print their stack trace. */
  KVFOLD_DEBUG: envOptional(z.string().optional()).transform((v) => v !== undefined && v !== '0' && v.toLowerCase() !== 'false'),
});

export type CliEnv = Env &
  z.output<typeof CliEnvSchema> & {
    /** LOG_LEVEL as the user set it (undefined when unset: each command picks its own default). */
    readonly logLevelSet: string | undefined;
    /** The whole environment, for the worker and the API that `kvfold worker` / `kvfold serve` run in this process. */
    readonly all: Readonly<Record<string, string | undefined>>;
  };

let cached: CliEnv | undefined;

export function cliEnv(): CliEnv {
  cached ??= { ...loadEnvWith(CliEnvSchema), logLevelSet: process.env.LOG_LEVEL?.trim() || undefined, all: process.env };
  return cached;
}

/** Whether KVFOLD_DEBUG asks for stack traces; false when the environment itself does not parse. */
export function debugEnabled(): boolean {
  try {
    return cliEnv().KVFOLD_DEBUG;
  } catch {
    return false;
  }
}
