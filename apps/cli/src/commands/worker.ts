/** `kvfold worker`: run a queue worker (`runWorker` of @kvfold/runner) in this process, folding document jobs. */
import type { Command } from 'commander';
import { Option } from 'commander';
import { nonNegativeInt, positiveInt } from '../options.ts';

export function registerWorker(program: Command): void {
  program
    .command('worker')
    .description('fold document jobs from the queue (Redis at REDIS_URL, store at KVFOLD_STORE); SIGTERM stops after the current step')
    .option('--concurrency <n>', 'documents folded at once (one per device; default KVFOLD_WORKER_CONCURRENCY or 1)', positiveInt('--concurrency'))
    .addOption(new Option('--device <device>', 'execution provider (default KVFOLD_DEVICE or cpu)').choices(['cpu', 'webgpu', 'cuda']))
    .option('--threads <n>', 'ONNX Runtime intra-op threads', positiveInt('--threads'))
    .option('--health-port <port>', 'serve GET /healthz and /readyz on this port', nonNegativeInt('--health-port'))
    .action(async (opts: { concurrency?: number; device?: string; threads?: number; healthPort?: number }) => {
      // The worker runs here, not in a child: a supervisor's SIGTERM or SIGKILL reaches it directly.
      const [{ runWorker }, { cliEnv }] = await Promise.all([import('@kvfold/runner'), import('../env.ts')]);
      await runWorker({
        ...cliEnv().all,
        ...(opts.concurrency ? { KVFOLD_WORKER_CONCURRENCY: String(opts.concurrency) } : {}),
        ...(opts.device ? { KVFOLD_DEVICE: opts.device } : {}),
        ...(opts.threads ? { KVFOLD_THREADS: String(opts.threads) } : {}),
        ...(opts.healthPort !== undefined ? { KVFOLD_WORKER_HEALTH_PORT: String(opts.healthPort) } : {}),
      });
    });
}
