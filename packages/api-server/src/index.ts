/**
 * @kvfold/api-server: the REST service (runApi, which apps/api and `kvfold serve` run in their own
 * process), its app factory and configuration, for embedding the service in infrastructure code and tests.
 */
export { buildApi } from './app.ts';
export { runApi } from './serve.ts';
export type { ApiDeps, ApiLimits } from './app.ts';
export { ApiEnvSchema, loadApiEnv } from './env.ts';
export type { ApiEnv } from './env.ts';
export { ApiError, ApiErrorCode } from './errors.ts';
