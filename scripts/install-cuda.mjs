#!/usr/bin/env node
// GPU hosts only: fetch onnxruntime-node's CUDA 12 execution provider binaries, which the default,
// offline, CPU-only install leaves out. Runs the package's own installer with its documented flag.
import { execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

const require = createRequire(join(process.cwd(), 'packages/onnx/package.json'));
const pkgDir = dirname(require.resolve('onnxruntime-node/package.json'));
execFileSync(process.execPath, [join(pkgDir, 'script/install.js')], {
  cwd: pkgDir,
  stdio: 'inherit',
  // biome-ignore lint/suspicious/noUndeclaredEnvVars: the installer's own documented switch
  env: { ...process.env, ONNXRUNTIME_NODE_INSTALL: process.env.ONNXRUNTIME_NODE_INSTALL ?? 'cuda12' },
});
console.log(`CUDA execution provider installed into ${pkgDir}; run with --device cuda`);
