#!/usr/bin/env node
// The `kvfold` command: the compiled CLI (dist/, written by build.mjs at `pnpm install` and
// `pnpm build`). Relative paths resolve from the directory it is started in.
import { existsSync } from 'node:fs';

const main = new URL('../dist/main.mjs', import.meta.url);
if (!existsSync(main)) {
  process.stderr.write(`kvfold: ${main.pathname} is missing: run \`pnpm install\` or \`pnpm build\` in the repository to compile the CLI\n`);
  process.exit(1);
}
await import(main.href);
