// Builds the `kvfold` binary: apps/cli/src and the workspace packages it imports (TypeScript
// source, and commander) compiled into plain JavaScript under dist/, one chunk per lazily imported command, so
// `kvfold --help` loads only the command tree. Every other package stays external and is
// resolved from node_modules at run time, so each must be a dependency of @kvfold/cli (checked
// here). bin/kvfold.mjs runs dist/main.mjs. Run by `pnpm install` (the workspace's `prepare`)
// and `pnpm build`.
import { readFile, rename, rm } from 'node:fs/promises';
import { builtinModules } from 'node:module';
import { build } from 'esbuild';

const here = new URL('.', import.meta.url);
const pkg = JSON.parse(await readFile(new URL('package.json', here), 'utf8'));
const declared = new Set(Object.keys(pkg.dependencies ?? {}));
const builtins = new Set(builtinModules);

/** The package a bare specifier names: `@scope/name/sub` -> `@scope/name`, `name/sub` -> `name`. */
const packageOf = (spec) => spec.split('/').slice(0, spec.startsWith('@') ? 2 : 1).join('/');

/**
 * Workspace packages (@kvfold/*) are bundled; every other bare import stays an import. Both are
 * declared free of import side effects (none of our modules is imported for its side effects), so
 * a constant the command tree reads at start-up (a default, a list of names) brings in only what
 * it needs: the modules behind each command load when that command runs (its dynamic imports).
 */
/**
 * commander, which every start of the CLI loads (pure JavaScript, no dependencies), is bundled too:
 * reading it from the bundle saves resolving and loading its CommonJS files one by one.
 */
const BUNDLED = new Set(['commander']);
const WORKSPACE = new URL('../../', here).pathname;
const externalPackages = {
  name: 'external-packages',
  setup(b) {
    b.onResolve({ filter: /.*/ }, async (args) => {
      if (args.pluginData?.inner || args.kind === 'entry-point') return undefined;
      if (args.path.startsWith('node:') || builtins.has(args.path)) return { path: args.path, external: true, sideEffects: false };
      if (/^[^./]/.test(args.path) && !BUNDLED.has(packageOf(args.path)) && !packageOf(args.path).startsWith('@kvfold/')) return { path: args.path, external: true, sideEffects: false };
      const resolved = await b.resolve(args.path, { kind: args.kind, resolveDir: args.resolveDir, importer: args.importer, pluginData: { inner: true } });
      if (resolved.errors.length > 0) return { errors: resolved.errors };
      const ours = resolved.path.startsWith(WORKSPACE) && !resolved.path.includes('/node_modules/');
      return { ...resolved, ...(ours ? { sideEffects: false } : {}) };
    });
  },
};

// Written beside dist/ and swapped in, so a `kvfold` that is running keeps its files until it exits
// and a new one never sees half a build.
const dist = new URL('dist', here).pathname;
const next = `${dist}.next-${process.pid}`;
const old = `${dist}.old-${process.pid}`;
const result = await build({
  absWorkingDir: new URL('.', here).pathname,
  entryPoints: {
    main: 'src/main.ts',
    // @kvfold/onnx starts each model's session thread from `./ts-worker-entry.mjs` beside its own
    // module (in the sources, a loader that runs session-worker.ts through tsx). In the bundle its
    // module is a file of dist/, so the session worker itself, compiled, is written under that name.
    'ts-worker-entry': '../../packages/onnx/src/session-worker.ts',
  },
  outdir: next,
  outExtension: { '.js': '.mjs' },
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  sourcemap: 'linked',
  // Bundled CommonJS (commander) requires Node built-ins; ESM has no `require` of its own.
  banner: { js: "import { createRequire as __kvfoldCreateRequire } from 'node:module'; const require = __kvfoldCreateRequire(import.meta.url);" },
  logLevel: 'warning',
  plugins: [externalPackages],
  metafile: true,
});
const external = new Set(
  Object.values(result.metafile.outputs)
    .flatMap((o) => o.imports)
    .filter((i) => i.external && !i.path.startsWith('node:') && !builtins.has(i.path))
    .map((i) => packageOf(i.path)),
);
const missing = [...external].filter((name) => !declared.has(name)).sort();
if (missing.length > 0) {
  process.stderr.write(
    `apps/cli/build.mjs: the bundle imports ${missing.join(', ')} at run time, but apps/cli/package.json does not list them: add each to its dependencies at the version the importing package pins, then run pnpm install\n`,
  );
  await rm(next, { recursive: true, force: true });
  process.exit(1);
}
await rename(dist, old).catch((err) => {
  if (err.code !== 'ENOENT') throw err;
});
await rename(next, dist);
await rm(old, { recursive: true, force: true });
