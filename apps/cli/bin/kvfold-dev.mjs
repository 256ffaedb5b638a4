#!/usr/bin/env node
// `pnpm kvfold ...` (the workspace's script): the CLI from its TypeScript sources, through tsx,
// in the directory pnpm was started from (INIT_CWD), so relative paths resolve as they do for the
// installed `kvfold`. Plain JavaScript because it runs before any loader exists.
import { register } from 'tsx/esm/api';

if (process.env.INIT_CWD) {
  process.chdir(process.env.INIT_CWD);
  delete process.env.INIT_CWD; // processes this one starts inherit the directory itself
}
register();
await import('../src/main.ts');
