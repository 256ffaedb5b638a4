/**
 * @kvfold/api: the REST service's app factory and configuration. Apps never import each other;
 * this entry exists for embedding the service in infrastructure code and tests.
 */
export { buildApi } from './app.ts';
export type { ApiDeps, ApiLimits } from './app.ts';
export { ApiEnvSchema, loadApiEnv } from './env.ts';
export type { ApiEnv } from './env.ts';
export { ApiError, ApiErrorCode } from './errors.ts';
