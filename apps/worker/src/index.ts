/** @kvfold/worker: the queue worker, for `kvfold worker` to run in its own process. */
export { runWorker } from './worker.ts';
export { loadWorkerEnv, WorkerEnvSchema } from './env.ts';
export type { WorkerEnv } from './env.ts';
