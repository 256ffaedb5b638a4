/** `kvfold niah`, `kvfold niah-report` and `kvfold drift` as a user runs them: real processes, real model folders. */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';

const MAIN = new URL('../main.ts', import.meta.url).pathname;
const root = mkdtempSync(join(tmpdir(), 'kvfold-niah-cli-'));
const recall = join(root, 'recall');
const tiny = join(root, 'tiny');
after(() => rmSync(root, { recursive: true, force: true }));

function kvfold(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, ['--import', 'tsx', MAIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d: Buffer) => {
      stdout += d;
    });
    p.stderr.on('data', (d: Buffer) => {
      stderr += d;
    });
    p.on('error', reject);
    p.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}

before(async () => {
  for (const [name, dir] of [
    ['recall', recall],
    ['tiny-llama', tiny],
  ] as const) {
    const r = await kvfold(['models', 'build', name, '--out', dir]);
    assert.equal(r.code, 0, r.stderr);
  }
});

test('niah writes results.jsonl, report.md and a heatmap, and prints the summary table', async () => {
  const out = join(root, 'run');
  const r = await kvfold(['niah', '--model', recall, '--lengths', '2k,3k', '--depths', '0,1', '--chunk-sizes', '256', '--needles-per-haystack', '2', '--out', out]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /chunk\s+length\s+d=0\s+d=1/);
  assert.match(r.stdout, /256\s+2K\s+100% 1\/1\s+100% 1\/1/);
  assert.match(r.stdout, /exact match 100% \(4\/4\)/);
  const lines = readFileSync(join(out, 'results.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  assert.equal(lines.length, 4);
  for (const k of ['length', 'depth', 'chunkSize', 'chainDepth', 'policy', 'kv', 'expected', 'got', 'exact', 'timings']) assert.ok(k in lines[0], k);
  assert.match(readFileSync(join(out, 'report.md'), 'utf8'), /\| 3K \| 100% \(1\/1\) \| 100% \(1\/1\) \| 100% \(2\/2\) \|/);
  assert.ok(existsSync(join(out, 'heatmap-chunk256.svg')));

  const merged = join(root, 'merged');
  const m = await kvfold(['niah-report', '--results', join(out, 'results.jsonl'), '--out', merged]);
  assert.equal(m.code, 0, m.stderr);
  assert.equal(readFileSync(join(merged, 'results.jsonl'), 'utf8').trim().split('\n').length, 4);
});

test('niah --json prints one summary object', async () => {
  const r = await kvfold(['niah', '--model', recall, '--lengths', '2k', '--depths', '0.5', '--policy', 'streaming', '--window', '512', '--out', join(root, 'json'), '--json']);
  assert.equal(r.code, 0, r.stderr);
  const o = JSON.parse(r.stdout);
  assert.deepEqual([o.protocol, o.trials, o.exact], ['recall', 1, 0]);
});

for (const [what, args, message] of [
  ['a length beyond max positions', ['--lengths', '256k'], /262144 tokens is beyond the model's 131072 positions .*\[KVF_NIAH_TOO_LONG\]/],
  ['a depth outside [0, 1]', ['--depths', '0,-0.1'], /--depths: -0.1 is outside \[0, 1\]/],
  ['a depth that is not a number', ['--depths', 'middle'], /--depths: "middle" is not a number/],
  ['streaming without a window', ['--policy', 'streaming'], /--policy streaming needs --window N/],
  ['a window larger than the length', ['--policy', 'streaming', '--window', '32k'], /--window 32768 .* not smaller than the length 16384/],
  ['a protocol the tokenizer cannot express', ['--protocol', 'text'], /cannot express the text protocol/],
] as const) {
  test(`niah refuses ${what}`, async () => {
    const r = await kvfold(['niah', '--model', recall, '--out', join(root, 'never'), ...args]);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, message);
    assert.doesNotMatch(r.stderr, /at .*\.ts:\d+/);
  });
}

test('drift refuses a length beyond max positions, as niah does', async () => {
  const r = await kvfold(['drift', '--model', tiny, '--length', '256k', '--chunk-size', '256']);
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /--length: 262144 tokens is beyond the model's 131072 positions \(max_position_embeddings\); use a length up to 131072 \[KVF_DRIFT_TOO_LONG\]/);
});

test('drift prints the per-step table and writes markdown, JSON and SVG', async () => {
  const out = join(root, 'drift');
  const r = await kvfold(['drift', '--model', tiny, '--length', '1k', '--chunk-size', '256', '--out', out]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /\| 4 \| 768–1023 \| /);
  const json = JSON.parse(readFileSync(join(out, 'drift.json'), 'utf8'));
  assert.equal(json.steps.length, 4);
  assert.ok(json.overall.maxAbs < 1e-4);
  assert.ok(readFileSync(join(out, 'drift.svg'), 'utf8').startsWith('<svg'));
});
