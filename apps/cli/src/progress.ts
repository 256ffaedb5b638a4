/** A progress bar on stderr when it is a terminal; silent otherwise (pipes, CI, --json consumers). */
import cliProgress from 'cli-progress';

export interface Progress {
  update(done: number, info?: Record<string, string | number>): void;
  setTotal?(total: number): void;
  stop(): void;
}

export function progressBar(total: number, label: string, enabled = process.stderr.isTTY === true): Progress {
  if (!enabled) return { update() {}, setTotal() {}, stop() {} };
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
