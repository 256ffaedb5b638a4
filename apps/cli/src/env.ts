/** The CLI's environment: parsed once, through the shared schema (packages/jobs). */
import { type Env, loadEnv } from '@kvfold/jobs';

let cached: Env | undefined;

export function cliEnv(): Env {
  cached ??= loadEnv();
  return cached;
}
