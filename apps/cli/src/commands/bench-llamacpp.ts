/**
 * `kvfold bench llamacpp`: our engine beside llama.cpp (node-llama-cpp, installed by the benchmark
 * into a folder of its own) on one random Llama-shaped checkpoint at f32/F32, int8/Q8_0 and
 * int4/Q4_0: a greedy agreement check, then prefill and decode tokens/s and peak RSS, each run in
 * a fresh process, interleaved, medians of --repeats.
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { availableParallelism, cpus, loadavg, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import type { GreedyRun, LlamaCppRun, PeerKv, PeerShape, PeerWidth, PrecisionRun } from '@kvfold/bench';
import { type Command, Option } from 'commander';
import { CliError } from '../cli-error.ts';
import { list, parseTokenCount, positiveInt } from '../options.ts';
import { kvfoldChild } from './bench-child.ts';

interface LlamaCppFlags {
  shape: string;
  widths: string[];
  tokens: number;
  chunkSize: number;
  decode: number;
  repeats: number;
  threads: number;
  kv: PeerKv;
  flashAttention: FlashAttention;
  validateTokens: number;
  validateGenerate: number;
  dir?: string;
  peerDir: string;
  out: string;
}

type FlashAttention = 'auto' | 'on' | 'off';
const FLASH_ATTENTION: Readonly<Record<FlashAttention, 'auto' | boolean>> = { auto: 'auto', on: true, off: false };
const SHAPES = ['123m', '1b'];
const WIDTHS = ['f32', 'int8', 'int4'];
/** Where the peer is installed by default (DEFAULT_PEER_DIR of @kvfold/bench; a constant here keeps --help from loading it). */
const PEER_DIR = '.kvfold/llamacpp';

export function registerLlamaCppBench(bench: Command): void {
  bench
    .command('llamacpp')
    .description('our engine beside llama.cpp (node-llama-cpp, installed into --peer-dir) on the same weights and token ids: f32/F32, int8/Q8_0, int4/Q4_0 prefill and decode tokens/s, peak RSS')
    .option('--shape <shape>', `checkpoint shape: ${SHAPES.join(', ')} (123m: hidden 1024, 8 layers; 1b: Llama-3.2-1B's widths, vocabulary 128256)`, '123m')
    .option('--widths <list>', 'our weight widths, each beside its GGUF type (f32 F32, int8 Q8_0, int4 Q4_0)', list('--widths', (_flag, v) => v), WIDTHS)
    .option('--tokens <n>', 'tokens prefilled in each measured run', (v) => parseTokenCount('--tokens', v), 8192)
    .option('--chunk-size <n>', "our fold's chunk and llama.cpp's batch size", positiveInt('--chunk-size'), 512)
    .option('--decode <n>', 'tokens decoded after the prefill', positiveInt('--decode'), 128)
    .option('--repeats <n>', 'runs of each engine and width (medians are reported)', positiveInt('--repeats'), 3)
    .option('--threads <n>', "threads of both engines (ONNX Runtime's intra-op threads, llama.cpp's threads)", positiveInt('--threads'), availableParallelism())
    .addOption(new Option('--kv <width>', 'cache width of both engines').choices(['f32', 'f16']).default('f32'))
    .addOption(new Option('--flash-attention <mode>', "llama.cpp's flash attention (its default auto turns it on on the CPU)").choices(['auto', 'on', 'off']).default('auto'))
    .option('--validate-tokens <n>', 'prompt tokens of the greedy agreement check at f32', positiveInt('--validate-tokens'), 32)
    .option('--validate-generate <n>', 'greedy tokens compared in that check', positiveInt('--validate-generate'), 16)
    .option('--dir <dir>', 'where the checkpoint, folders and GGUF files are written and kept, and reused when complete (default: a temporary folder, removed)')
    .option('--peer-dir <dir>', 'where node-llama-cpp is installed (npm, from the registry) and loaded from', PEER_DIR)
    .option('--out <file>', 'JSON result file', 'bench-results/llamacpp.json')
    .action(async (o: LlamaCppFlags) => runLlamaCpp(o));

  const session = (c: Command) =>
    c
      .requiredOption('--peer-dir <dir>')
      .requiredOption('--gguf <file>')
      .requiredOption('--chunk-size <n>', '', positiveInt('--chunk-size'))
      .requiredOption('--threads <n>', '', positiveInt('--threads'))
      .requiredOption('--kv <width>')
      .requiredOption('--vocab <n>', '', positiveInt('--vocab'))
      .requiredOption('--flash-attention <mode>');
  session(bench.command('llamacpp-run', { hidden: true }))
    .requiredOption('--tokens <n>', '', (v) => parseTokenCount('--tokens', v))
    .requiredOption('--decode <n>', '', positiveInt('--decode'))
    .action(async (o: PeerFlags & { tokens: number; decode: number }) => {
      const { measureLlamaCpp } = await import('@kvfold/bench');
      const r = await measureLlamaCpp({ ...peerSession(o), tokens: o.tokens, decode: o.decode });
      process.stdout.write(`${JSON.stringify(r)}\n`);
    });
  session(bench.command('llamacpp-greedy', { hidden: true }))
    .requiredOption('--tokens <n>', '', positiveInt('--tokens'))
    .requiredOption('--generate <n>', '', positiveInt('--generate'))
    .action(async (o: PeerFlags & { tokens: number; generate: number }) => {
      const { llamaCppGreedy } = await import('@kvfold/bench');
      const r = await llamaCppGreedy({ ...peerSession(o), tokens: o.tokens, generate: o.generate });
      process.stdout.write(`${JSON.stringify(r)}\n`);
    });
  bench
    .command('llamacpp-ours-greedy', { hidden: true })
    .requiredOption('--model <dir>')
    .requiredOption('--tokens <n>', '', positiveInt('--tokens'))
    .requiredOption('--generate <n>', '', positiveInt('--generate'))
    .requiredOption('--chunk-size <n>', '', positiveInt('--chunk-size'))
    .requiredOption('--threads <n>', '', positiveInt('--threads'))
    .action(async (o: { model: string; tokens: number; generate: number; chunkSize: number; threads: number }) => {
      const { oursGreedy } = await import('@kvfold/bench');
      const r = await oursGreedy({ modelDir: o.model, tokens: o.tokens, generate: o.generate, chunkSize: o.chunkSize, threads: o.threads });
      process.stdout.write(`${JSON.stringify(r)}\n`);
    });
}

interface PeerFlags {
  peerDir: string;
  gguf: string;
  chunkSize: number;
  threads: number;
  kv: PeerKv;
  vocab: number;
  flashAttention: FlashAttention;
}

const peerSession = (o: PeerFlags) => ({
  peerDir: o.peerDir,
  gguf: o.gguf,
  chunkSize: o.chunkSize,
  threads: o.threads,
  kv: o.kv,
  vocab: o.vocab,
  flashAttention: FLASH_ATTENTION[o.flashAttention],
});

/** The hidden children's session flags, from a session. */
function sessionArgs(s: { peerDir: string; gguf: string; chunkSize: number; threads: number; kv: PeerKv; vocab: number; flashAttention: 'auto' | boolean }): string[] {
  const fa = s.flashAttention === 'auto' ? 'auto' : s.flashAttention ? 'on' : 'off';
  return ['--peer-dir', s.peerDir, '--gguf', s.gguf, '--chunk-size', String(s.chunkSize), '--threads', String(s.threads), '--kv', s.kv, '--vocab', String(s.vocab), '--flash-attention', fa];
}

async function runLlamaCpp(o: LlamaCppFlags): Promise<void> {
  if (!SHAPES.includes(o.shape)) throw new CliError(`--shape must be one of ${SHAPES.join(', ')}, got "${o.shape}"`);
  const bad = o.widths.filter((w) => !WIDTHS.includes(w));
  if (bad.length) throw new CliError(`--widths: ${bad.join(', ')} is not a width this benchmark compares; use ${WIDTHS.join(', ')}`);
  const [{ ensurePeerInstalled, runPeerBench }, { cliEnv }] = await Promise.all([import('@kvfold/bench'), import('../env.ts')]);
  const log = (line: string) => process.stdout.write(`${line}\n`);
  const peerDir = resolve(o.peerDir);
  await ensurePeerInstalled(peerDir, cliEnv().all, log);
  const scratch = o.dir ? null : await mkdtemp(join(tmpdir(), 'kvfold-bench-llamacpp-'));
  const dir = o.dir ? resolve(o.dir) : (scratch as string);
  await mkdir(dir, { recursive: true });
  try {
    const load = loadavg().map((l) => l.toFixed(2));
    log(
      `machine: ${cpus()[0]?.model ?? 'unknown CPU'}, ${availableParallelism()} cores, load ${load.join(' ')}; ${o.threads} threads; ` +
        `${o.tokens} tokens in chunks of ${o.chunkSize}, then ${o.decode} decoded; ${o.kv} cache; llama.cpp flash attention ${o.flashAttention}`,
    );
    const report = await runPeerBench({
      ...o,
      shape: o.shape as PeerShape,
      widths: o.widths as PeerWidth[],
      flashAttention: FLASH_ATTENTION[o.flashAttention],
      dir,
      peerDir,
      log,
      children: {
        oursRun: (r) =>
          kvfoldChild<PrecisionRun>(
            ['bench', 'precision-run', '--model', r.modelDir, '--tokens', String(r.tokens), '--chunk-size', String(r.chunkSize), '--decode', String(r.decode), '--threads', String(r.threads), '--kv', r.kv ?? 'f32'],
            `the fold of ${r.modelDir}`,
          ),
        peerRun: (r) => kvfoldChild<LlamaCppRun>(['bench', 'llamacpp-run', ...sessionArgs(r), '--tokens', String(r.tokens), '--decode', String(r.decode)], `llama.cpp's run of ${r.gguf}`),
        oursGreedy: (g) =>
          kvfoldChild<GreedyRun>(
            ['bench', 'llamacpp-ours-greedy', '--model', g.modelDir, '--tokens', String(g.tokens), '--generate', String(g.generate), '--chunk-size', String(g.chunkSize), '--threads', String(g.threads)],
            `the greedy run of ${g.modelDir}`,
          ),
        peerGreedy: (g) => kvfoldChild<GreedyRun>(['bench', 'llamacpp-greedy', ...sessionArgs(g), '--tokens', String(g.tokens), '--generate', String(g.generate)], `llama.cpp's greedy run of ${g.gguf}`),
      },
    });
    const out = resolve(o.out);
    await mkdir(dirname(out), { recursive: true });
    const after = loadavg().map((l) => l.toFixed(2));
    await writeFile(out, `${JSON.stringify({ benchmark: 'llamacpp', date: new Date().toISOString(), cpu: cpus()[0]?.model, cores: availableParallelism(), loadBefore: load, loadAfter: after, ...report }, null, 2)}\n`);
    log(`load average after: ${after.join(' ')}; wrote ${out}`);
    if (report.bars.some((b) => !b.pass)) process.exitCode = 1;
  } finally {
    if (scratch) await rm(scratch, { recursive: true, force: true });
  }
}
