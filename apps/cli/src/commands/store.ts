/** `kvfold store check|gc`: what a store honours, and its checkpoint garbage swept. */
import type { Command } from 'commander';
import { CliError } from '../cli-error.ts';

/** `30m`, `2h`, `1d`, or seconds. */
function parseAge(flag: string, value: string): number {
  const m = /^([0-9]+)(s|m|h|d)?$/.exec(value.trim());
  if (!m) throw new CliError(`${flag} must be a whole number of seconds or a number with s, m, h or d (e.g. 30m), got "${value}"`);
  return Number(m[1]) * { s: 1, m: 60, h: 3600, d: 86_400 }[(m[2] ?? 's') as 's' | 'm' | 'h' | 'd'] * 1000;
}

export function registerStore(program: Command): void {
  const store = program.command('store').description('look at an object store: what it honours, and its checkpoint garbage');
  store
    .command('check')
    .description('reach the store and report the conditional writes it enforces (which checkpoint fencing relies on)')
    .option('--store <uri>', 'the store (default KVFOLD_STORE, else .kvfold/store)')
    .option('--json', 'print the result as JSON')
    .action(async (opts: { store?: string; json?: boolean }) => {
      const [{ storeOptionsFromEnv }, { checkStore, openStore, S3ObjectStore }, { cliEnv }] = await Promise.all([import('@kvfold/jobs'), import('@kvfold/storage'), import('../env.ts')]);
      const env = cliEnv();
      const s = openStore(opts.store ?? env.KVFOLD_STORE ?? '.kvfold/store', storeOptionsFromEnv(env));
      await checkStore(s);
      const conditions = s instanceof S3ObjectStore && s.conditionalWrites ? await s.probeConditionalWrites() : null;
      const report = { store: s.uri, conditionalWrites: s.conditionalWrites, ...(conditions ? { enforced: conditions } : {}) };
      if (opts.json) process.stdout.write(`${JSON.stringify(report)}\n`);
      else if (!conditions) process.stdout.write(`${s.uri}: reachable; ${s.uri.startsWith('file:') ? 'filesystem store (writes fenced by its key locks)' : 'declared without conditional writes (KVFOLD_S3_CONDITIONAL_WRITES=false): checked by HEAD first'}\n`);
      else {
        const ifMatch = conditions.ifMatch === 'quoted' ? "If-Match (S3's quoted etag)" : conditions.ifMatch === 'bare' ? 'If-Match (bare etag only; sent so)' : 'no If-Match';
        process.stdout.write(`${s.uri}: reachable; enforces ${conditions.ifNoneMatch ? 'If-None-Match: *' : 'no If-None-Match'}, ${ifMatch}; CompleteMultipartUpload ${conditions.multipart ? 'honours them' : 'ignores them (conditional writes go up as one PutObject)'}\n`);
      }
    });
  store
    .command('gc')
    .description('remove checkpoint garbage: segments no manifest lists, folders without a manifest, checkpoints of completed documents (all older than --grace)')
    .option('--store <uri>', 'the store (default KVFOLD_STORE, else .kvfold/store)')
    .option('--grace <age>', 'leave anything younger than this (a live writer’s fresh segment): seconds, or with s, m, h, d', (v) => parseAge('--grace', v), 3_600_000)
    .option('--dry-run', 'report what would be removed, remove nothing')
    .option('--json', 'print the result as JSON')
    .action(async (opts: { store?: string; grace: number; dryRun?: boolean; json?: boolean }) => {
      const [{ storeOptionsFromEnv }, { checkStore, openStore }, { sweepStore }, { cliEnv }] = await Promise.all([
        import('@kvfold/jobs'),
        import('@kvfold/storage'),
        import('@kvfold/runner'),
        import('../env.ts'),
      ]);
      const env = cliEnv();
      const s = openStore(opts.store ?? env.KVFOLD_STORE ?? '.kvfold/store', storeOptionsFromEnv(env));
      await checkStore(s);
      const r = await sweepStore(s, { graceMs: opts.grace, dryRun: opts.dryRun === true });
      if (opts.json) process.stdout.write(`${JSON.stringify({ store: s.uri, dryRun: opts.dryRun === true, ...r })}\n`);
      else {
        const verb = opts.dryRun ? 'would remove' : 'removed';
        process.stdout.write(
          `${s.uri}: ${r.folders} checkpoints looked at; ${verb} ${r.completedRemoved} of completed documents and ${r.unlistedRemoved} objects no manifest lists (${(r.bytesRemoved / 2 ** 20).toFixed(1)} MiB); ${r.youngKept} younger than the grace age kept\n`,
        );
      }
    });
}
