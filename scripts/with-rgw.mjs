#!/usr/bin/env node
// Runs a test command a second time against Ceph's RADOS Gateway, the real S3 server that
// infra/rgw/up.sh starts: with the settings it wrote (KVFOLD_RGW_ENV, default
// /tmp/kvfold-rgw/env) added to the environment, so the test helper of packages/storage picks it
// instead of s3rver. Without that file it says so and runs nothing (.ci/run starts the gateway).
//
//   node scripts/with-rgw.mjs <command> [args...]
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';

const file = process.env.KVFOLD_RGW_ENV ?? '/tmp/kvfold-rgw/env';
if (!existsSync(file)) {
  process.stdout.write(`with-rgw: ${file} not found, so the suites did not run on RGW (infra/rgw/up.sh starts it; .ci/run does)\n`);
  process.exit(0);
}
const settings = Object.fromEntries(
  readFileSync(file, 'utf8')
    .split('\n')
    .filter((line) => /^[A-Z0-9_]+=/.test(line))
    .map((line) => [line.slice(0, line.indexOf('=')), line.slice(line.indexOf('=') + 1)]),
);
const [command, ...args] = process.argv.slice(2);
if (!command) {
  process.stderr.write('usage: node scripts/with-rgw.mjs <command> [args...]\n');
  process.exit(2);
}
process.stdout.write(`with-rgw: ${[command, ...args].join(' ')} on ${settings.KVFOLD_TEST_S3_ENDPOINT}\n`);
const run = spawnSync(command, args, { stdio: 'inherit', env: { ...process.env, ...settings } });
process.exit(run.status ?? 1);
