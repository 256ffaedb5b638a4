// `pnpm bench:startup`: start-up time of the compiled `kvfold` beside a bare Node. Runs `node -e 0`,
// `kvfold --help` and `kvfold --version` N times each, interleaved, from a scratch directory, and
// prints the median wall time of each and its ratio to bare Node. A measurement, not a test: the
// figures move with the machine's load.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const runs = Number(process.argv[2] ?? 20);
if (!Number.isInteger(runs) || runs < 1) {
  process.stderr.write(`bench:startup: runs must be a positive integer, got "${process.argv[2]}"; try pnpm bench:startup 20\n`);
  process.exit(2);
}
const bin = fileURLToPath(new URL('../bin/kvfold.mjs', import.meta.url));
const cases = [
  { name: 'node -e 0', args: ['-e', '0'] },
  { name: 'kvfold --help', args: [bin, '--help'] },
  { name: 'kvfold --version', args: [bin, '--version'] },
];
const cwd = mkdtempSync(join(tmpdir(), 'kvfold-startup-'));
const times = new Map(cases.map((c) => [c.name, []]));
try {
  for (let i = 0; i < runs; i++) {
    for (const c of cases) {
      const t0 = process.hrtime.bigint();
      const r = spawnSync(process.execPath, c.args, { cwd, encoding: 'utf8' });
      const ms = Number(process.hrtime.bigint() - t0) / 1e6;
      if (r.status !== 0) {
        process.stderr.write(`bench:startup: ${c.name} exited with ${r.status ?? r.signal}: ${r.stderr}\n`);
        process.exit(1);
      }
      times.get(c.name).push(ms);
    }
  }
} finally {
  rmSync(cwd, { recursive: true, force: true });
}
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const base = median(times.get('node -e 0'));
process.stdout.write(`${runs} runs each, interleaved (Node ${process.version})\n`);
for (const c of cases) {
  const m = median(times.get(c.name));
  process.stdout.write(`${c.name.padEnd(18)} median ${m.toFixed(1).padStart(7)} ms  ${(m / base).toFixed(2)}x node -e 0\n`);
}
