/** A progress bar on stderr when it is a terminal; silent otherwise (pipes, CI, --json consumers). */
import { createRequire } from 'node:module';

/** cli-progress, loaded when a bar is first drawn rather than at every start of the CLI. */
export function loadCliProgress(): typeof import('cli-progress') {
  return createRequire(import.meta.url)('cli-progress');
}

export interface Progress {
  update(done: number, info?: Record<string, string | number>): void;
  setTotal?(total: number): void;
  stop(): void;
}

export function progressBar(total: number, label: string, enabled = process.stderr.isTTY === true): Progress {
  if (!enabled) return { update() {}, setTotal() {}, stop() {} };
  const cliProgress = loadCliProgress();
  const bar = new cliProgress.SingleBar(
    {
      format: `${label} [{bar}] {percentage}% | {value}/{total} steps | {tokens} tokens | {rate} tok/s | ETA {eta_formatted}`,
      stream: process.stderr,
      hideCursor: true,
      clearOnComplete: true,
    },
    cliProgress.Presets.shades_classic,
  );
  bar.start(total, 0, { tokens: 0, rate: 0 });
  return {
    update: (done, info) => bar.update(done, info ?? {}),
    setTotal: (n) => bar.setTotal(n),
    stop: () => bar.stop(),
  };
}
