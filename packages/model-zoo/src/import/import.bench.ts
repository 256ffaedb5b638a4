/**
 * Import benchmark (not a test: it writes and reads several GiB). Writes a BF16 checkpoint of
 * about `--gib` GiB with Llama 3.2 1B's geometry (hidden 2048, 8192 MLP, 32 / 8 heads of 64, a
 * 128256-token vocabulary, untied lm_head) and as many layers as the size asks, then imports it in
 * a child process of its own and prints that process's peak RSS beside the largest tensor's
 * float32 size and the throughput. With --load it also opens each imported folder in an ONNX
 * Runtime session, in a process of its own, and prints that peak RSS (what --dtype f16 saves on
 * disk and what it does not save in memory).
 *
 *   pnpm --filter @kvfold/model-zoo bench:import [--gib 3] [--dtype f32,f16] [--load] [--dir /tmp/x] [--keep]
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { byteLevelTokenizer } from '../byte-tokenizer.ts';
import type { LlamaConfig } from '../llama-spec.ts';
import { SeededRandom } from '../rng.ts';
import { type ImportDtype, importCheckpoint } from './import-checkpoint.ts';
import { type SourceTensor, writeCheckpoint } from './write-checkpoint.ts';

const GIB = 2 ** 30;
const MIB = 2 ** 20;

/** Values are drawn once and repeated: their content does not change the cost of moving them. */
const BLOCK = 1 << 20;

const { values } = parseArgs({
  options: {
    gib: { type: 'string', default: '3' },
    dtype: { type: 'string', default: 'f32' },
    dir: { type: 'string' },
    keep: { type: 'boolean', default: false },
    load: { type: 'boolean', default: false },
    child: { type: 'string' },
    out: { type: 'string' },
    session: { type: 'string' },
  },
});

if (values.child) await childImport(values.child, values.out as string, values.dtype as ImportDtype);
else if (values.session) await childSession(values.session);
else await main();

/** The checkpoint's config: Llama 3.2 1B's widths with `layers` layers. */
function benchConfig(layers: number): LlamaConfig {
  return {
    vocab_size: 128256,
    hidden_size: 2048,
    intermediate_size: 8192,
    num_hidden_layers: layers,
    num_attention_heads: 32,
    num_key_value_heads: 8,
    head_dim: 64,
    rope_theta: 500000,
    rope_scaling: { rope_type: 'llama3', factor: 32, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 8192 },
    rms_norm_eps: 1e-5,
    max_position_embeddings: 131072,
    tie_word_embeddings: false,
    bos_token_id: 256,
    eos_token_id: 257,
  };
}

function tensorsOf(c: LlamaConfig): SourceTensor[] {
  const rng = new SeededRandom(1);
  const block = rng.normals(BLOCK, 0.02);
  const fill = (n: number) => (emit: (chunk: Float32Array) => void) => {
    for (let done = 0; done < n; done += BLOCK) emit(block.subarray(0, Math.min(BLOCK, n - done)));
  };
  const t = (name: string, shape: number[]): SourceTensor => ({ name, shape, values: fill(shape.reduce((a, b) => a * b, 1)) });
  const H = c.hidden_size;
  const q = c.num_attention_heads * c.head_dim;
  const kv = c.num_key_value_heads * c.head_dim;
  const out = [t('model.embed_tokens.weight', [c.vocab_size, H])];
  for (let i = 0; i < c.num_hidden_layers; i++) {
    const p = `model.layers.${i}`;
    out.push(
      t(`${p}.input_layernorm.weight`, [H]),
      t(`${p}.self_attn.q_proj.weight`, [q, H]),
      t(`${p}.self_attn.k_proj.weight`, [kv, H]),
      t(`${p}.self_attn.v_proj.weight`, [kv, H]),
      t(`${p}.self_attn.o_proj.weight`, [H, q]),
      t(`${p}.post_attention_layernorm.weight`, [H]),
      t(`${p}.mlp.gate_proj.weight`, [c.intermediate_size, H]),
      t(`${p}.mlp.up_proj.weight`, [c.intermediate_size, H]),
      t(`${p}.mlp.down_proj.weight`, [H, c.intermediate_size]),
    );
  }
  out.push(t('model.norm.weight', [H]), t('lm_head.weight', [c.vocab_size, H]));
  return out;
}

function elements(c: LlamaConfig): { perLayer: number; fixed: number } {
  const H = c.hidden_size;
  const q = c.num_attention_heads * c.head_dim;
  const kv = c.num_key_value_heads * c.head_dim;
  return { perLayer: 2 * H + 2 * q * H + 2 * kv * H + 3 * c.intermediate_size * H, fixed: 2 * c.vocab_size * H + H };
}

async function main(): Promise<void> {
  const gib = Number(values.gib);
  const dtypes = (values.dtype as string).split(',') as ImportDtype[];
  const probe = elements(benchConfig(1));
  const layers = Math.max(1, Math.round((gib * GIB) / 2 - probe.fixed) / probe.perLayer);
  const config = benchConfig(Math.max(1, Math.round(layers)));
  const root = values.dir ?? mkdtempSync(join(tmpdir(), 'kvfold-import-bench-'));
  const checkpoint = join(root, 'checkpoint');
  try {
    const tok = byteLevelTokenizer();
    let started = performance.now();
    const files = writeCheckpoint(
      { config, tensors: tensorsOf(config), tokenizer: tok.tokenizer, tokenizerConfig: tok.tokenizerConfig, generationConfig: { bos_token_id: 256, eos_token_id: 257 } },
      checkpoint,
      { family: 'llama', dtype: 'BF16', shards: Math.max(1, Math.ceil(gib / 2)) },
    );
    const sourceBytes = files.reduce((a, f) => a + statSync(join(checkpoint, f)).size, 0);
    process.stdout.write(
      `checkpoint: ${config.num_hidden_layers} layers, BF16, ${files.length} shard(s), ${(sourceBytes / GIB).toFixed(2)} GiB, written in ${((performance.now() - started) / 1000).toFixed(1)} s\n`,
    );
    for (const dtype of dtypes) {
      const out = join(root, `imported-${dtype}`);
      started = performance.now();
      const child = spawnSync(process.execPath, ['--import', 'tsx', new URL(import.meta.url).pathname, '--child', checkpoint, '--out', out, '--dtype', dtype], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
      if (child.status !== 0) throw new Error(`import child exited ${child.status}`);
      const r = JSON.parse(child.stdout) as ChildReport;
      const outBytes = statSync(join(out, 'onnx/model.onnx_data')).size;
      const seconds = r.ms / 1000;
      process.stdout.write(
        `import --dtype ${dtype}: ${seconds.toFixed(1)} s, read ${((r.sourceBytes / seconds) / 1e6).toFixed(0)} MB/s, wrote ${(outBytes / GIB).toFixed(2)} GiB (${((outBytes / seconds) / 1e6).toFixed(0)} MB/s); ` +
          `peak RSS ${(r.maxRss / MIB).toFixed(0)} MiB (${(r.startRss / MIB).toFixed(0)} MiB before the import); largest tensor ${r.largest.name} ${(r.largest.float32Bytes / MIB).toFixed(0)} MiB as float32 ` +
          `(peak RSS - start = ${((r.maxRss - r.startRss) / r.largest.float32Bytes).toFixed(2)} x the largest tensor)\n`,
      );
      if (values.load) {
        const s = spawnSync(process.execPath, ['--import', 'tsx', new URL(import.meta.url).pathname, '--session', out], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
        if (s.status !== 0) throw new Error(`session child exited ${s.status}`);
        const l = JSON.parse(s.stdout) as { maxRss: number; rss: number; ms: number };
        process.stdout.write(
          `  ONNX Runtime session of the ${dtype} folder: RSS ${(l.rss / MIB).toFixed(0)} MiB once created (peak ${(l.maxRss / MIB).toFixed(0)} MiB while creating), in ${(l.ms / 1000).toFixed(1)} s\n`,
        );
      }
      if (!values.keep) rmSync(out, { recursive: true, force: true });
    }
  } finally {
    if (!values.keep && !values.dir) rmSync(root, { recursive: true, force: true });
  }
}

interface ChildReport {
  readonly ms: number;
  readonly maxRss: number;
  readonly startRss: number;
  readonly sourceBytes: number;
  readonly largest: { name: string; float32Bytes: number };
}

async function childImport(checkpoint: string, out: string, dtype: ImportDtype): Promise<void> {
  const startRss = process.memoryUsage().rss;
  const started = performance.now();
  const r = await importCheckpoint(checkpoint, out, { dtype });
  const report: ChildReport = { ms: performance.now() - started, maxRss: process.resourceUsage().maxRSS * 1024, startRss, sourceBytes: r.sourceBytes, largest: r.largestTensor };
  process.stdout.write(`${JSON.stringify(report)}\n`);
}

async function childSession(dir: string): Promise<void> {
  const ort = await import('onnxruntime-node');
  const started = performance.now();
  const session = await ort.InferenceSession.create(join(dir, 'onnx', 'model.onnx'));
  const ms = performance.now() - started;
  const rss = process.memoryUsage().rss;
  const maxRss = process.resourceUsage().maxRSS * 1024;
  await session.release();
  process.stdout.write(`${JSON.stringify({ maxRss, rss, ms })}\n`);
}
