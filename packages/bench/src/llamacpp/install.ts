/**
 * The CPU peer, llama.cpp through node-llama-cpp, installed by the benchmark into a folder of its
 * own (default `.kvfold/llamacpp`, git-ignored) and loaded from there by path: it is no dependency
 * of the workspace, so `pnpm install` stays CPU-only and offline. The install takes node-llama-cpp
 * and only this platform's prebuilt CPU binary from the npm registry, with
 * NODE_LLAMA_CPP_SKIP_DOWNLOAD set so its postinstall neither downloads nor builds llama.cpp.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

/** The node-llama-cpp release measured (its llama.cpp and prebuilt binaries are pinned with it). */
export const NODE_LLAMA_CPP_VERSION = '3.22.1';
/** Where the benchmark keeps the peer, under the working folder. */
export const DEFAULT_PEER_DIR = '.kvfold/llamacpp';

/** node-llama-cpp's prebuilt CPU binary package for a platform (the Metal one on Apple silicon, run with gpu off). */
const PREBUILT: Readonly<Record<string, string>> = {
  'linux-x64': '@node-llama-cpp/linux-x64',
  'linux-arm64': '@node-llama-cpp/linux-arm64',
  'darwin-arm64': '@node-llama-cpp/mac-arm64-metal',
  'darwin-x64': '@node-llama-cpp/mac-x64',
  'win32-x64': '@node-llama-cpp/win-x64',
  'win32-arm64': '@node-llama-cpp/win-arm64',
};

/** The installed node-llama-cpp version in `dir`, or null. */
export function installedPeerVersion(dir: string): string | null {
  const pkg = join(resolve(dir), 'node_modules', 'node-llama-cpp', 'package.json');
  if (!existsSync(pkg)) return null;
  return (JSON.parse(readFileSync(pkg, 'utf8')) as { version?: string }).version ?? null;
}

/**
 * Installs node-llama-cpp and this platform's prebuilt binary into `dir` with npm unless that
 * version is there already. `env` is the environment npm runs in (the CLI passes its own).
 */
export async function ensurePeerInstalled(dir: string, env: Readonly<Record<string, string | undefined>>, log: (line: string) => void): Promise<void> {
  const root = resolve(dir);
  if (installedPeerVersion(root) === NODE_LLAMA_CPP_VERSION) return;
  const prebuilt = PREBUILT[`${process.platform}-${process.arch}`];
  if (!prebuilt) throw new Error(`node-llama-cpp has no prebuilt CPU binary for ${process.platform}-${process.arch}; the llama.cpp benchmark runs on ${Object.keys(PREBUILT).join(', ')}`);
  mkdirSync(root, { recursive: true });
  if (!existsSync(join(root, 'package.json'))) writeFileSync(join(root, 'package.json'), `${JSON.stringify({ name: 'kvfold-llamacpp-peer', private: true }, null, 2)}\n`);
  // --omit=optional: node-llama-cpp lists every platform's binary (CUDA and Vulkan ones included) as optional; we name the one we run.
  const args = ['install', '--prefix', root, '--omit=optional', '--save-exact', '--no-audit', '--no-fund', `node-llama-cpp@${NODE_LLAMA_CPP_VERSION}`, `${prebuilt}@${NODE_LLAMA_CPP_VERSION}`];
  log(`installing the llama.cpp peer into ${root}: npm ${args.join(' ')}`);
  await new Promise<void>((done, fail) => {
    const p = spawn('npm', args, { env: { ...env, NODE_LLAMA_CPP_SKIP_DOWNLOAD: 'true' }, stdio: ['ignore', 'inherit', 'inherit'], shell: process.platform === 'win32' });
    p.on('error', (err) => fail(new Error(`could not run npm to install node-llama-cpp (${err.message}); install it by hand: cd ${root} && npm ${args.slice(3).join(' ')}`)));
    p.on('close', (code) => (code === 0 ? done() : fail(new Error(`npm install of node-llama-cpp into ${root} exited with code ${code}`))));
  });
  if (installedPeerVersion(root) !== NODE_LLAMA_CPP_VERSION) throw new Error(`npm reported success but ${root}/node_modules holds no node-llama-cpp ${NODE_LLAMA_CPP_VERSION}`);
}

/** The parts of node-llama-cpp's API the benchmark uses (it is loaded by path, so typed here). */
export interface NodeLlamaCpp {
  getLlama(options: {
    gpu: false;
    build: 'never';
    usePrebuiltBinaries: true;
    skipDownload: true;
    progressLogs: false;
    maxThreads: number;
    logLevel: 'info';
    logger: (level: string, message: string) => void;
  }): Promise<Llama>;
}

export interface Llama {
  loadModel(options: { modelPath: string; gpuLayers: 0 }): Promise<LlamaModel>;
  dispose(): Promise<void>;
}

export interface LlamaModel {
  createContext(options: {
    contextSize: number;
    batchSize: number;
    sequences: 1;
    threads: { ideal: number; min: number };
    flashAttention: 'auto' | boolean;
    experimentalKvCacheKeyType: string;
    experimentalKvCacheValueType: string;
  }): Promise<LlamaContext>;
  readonly trainContextSize: number;
  dispose(): Promise<void>;
}

export interface LlamaContext {
  getSequence(): LlamaSequence;
  readonly contextSize: number;
  readonly batchSize: number;
  dispose(): Promise<void>;
}

export type ControlledInput = number | [number, { generateNext: { logits: true } }];

export interface LlamaSequence {
  evaluateWithoutGeneratingNewTokens(tokens: number[]): Promise<void>;
  evaluate(tokens: number[], options: { temperature: 0; yieldEogToken: true }): AsyncGenerator<number, void, undefined | number>;
  controlledEvaluate(input: ControlledInput[]): Promise<Array<undefined | { next: { logits?: Map<number, number> } }>>;
}

/** Imports node-llama-cpp from the peer folder (refusing, with the command to run, when it is absent). */
export async function importNodeLlamaCpp(dir: string): Promise<NodeLlamaCpp> {
  const root = resolve(dir);
  const version = installedPeerVersion(root);
  if (version === null) throw new Error(`node-llama-cpp is not installed in ${root}: run \`kvfold bench llamacpp\` (it installs it), or npm install it there`);
  const entry = createRequire(join(root, 'package.json')).resolve('node-llama-cpp');
  return (await import(pathToFileURL(entry).href)) as NodeLlamaCpp;
}
