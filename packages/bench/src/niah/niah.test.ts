/**
 * The NIAH harness on real models built by the zoo: the recall model answers every needle of a
 * full fold and loses the evicted ones under StreamingLLM; bad grids and tokenizers are refused by
 * name; haystacks follow RECALL.md's protocol; the report and heatmap hold the numbers.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { expectedAnswer, recallLayout, recallSpec, tinyLlamaSpec, writeModelFolder } from '@kvfold/model-zoo';
import { type LoadedModel, loadModel } from '@kvfold/onnx';
import { NiahError } from './errors.ts';
import type { NiahGrid } from './grid.ts';
import { writeHaystack } from './haystack.ts';
import { openResults, readResults, writeReport } from './output.ts';
import { chainBucket, heatmaps, reportMarkdown } from './report.ts';
import { niahModel, prepareNiah, runNiah, selectProtocol } from './run-niah.ts';
import { checkSvg } from './svg-check.ts';

const root = mkdtempSync(join(tmpdir(), 'kvfold-niah-test-'));
let recall: LoadedModel;
let tiny: LoadedModel;

before(async () => {
  await writeModelFolder(recallSpec(), join(root, 'recall'));
  await writeModelFolder(tinyLlamaSpec(), join(root, 'tiny'));
  [recall, tiny] = await Promise.all([loadModel(join(root, 'recall')), loadModel(join(root, 'tiny'))]);
});
after(async () => {
  await Promise.all([recall?.close(), tiny?.close()]);
  rmSync(root, { recursive: true, force: true });
});

const grid = (over: Partial<NiahGrid> = {}): NiahGrid => ({
  lengths: [4096],
  depths: [0, 0.5, 1],
  chunkSizes: [256],
  policy: { kind: 'full' },
  kv: 'f32',
  trials: 1,
  seed: 0,
  needlesPerHaystack: 1,
  protocol: 'auto',
  ...over,
});

const refusal = (code: string, message: RegExp) => (err: unknown) => err instanceof NiahError && err.code === code && message.test(err.message);

describe('recall model, full fold', () => {
  // The CI grid of the paper's table: 16K, chunk 256 (a ~10 s fold on two idle cores). One fold
  // holds the three depths' needles (fold once, ask many).
  test('16K, depths 0/0.5/1, chunk 256: every needle is answered exactly (3 needles from one folded state)', async () => {
    const run = await runNiah(niahModel(recall), grid({ lengths: [16384], needlesPerHaystack: 3 }));
    assert.equal(run.protocol, 'recall');
    assert.equal(run.trials.length, 3);
    assert.deepEqual(
      run.trials.map((t) => [t.depth, t.exact, t.got === t.expected]),
      [
        [0, true, true],
        [0.5, true, true],
        [1, true, true],
      ],
    );
    assert.equal(run.trials[0]?.chainDepth, 63); // 16384 - 2 question - 4 answer tokens = 64 steps of 256
    assert.equal(run.trials[2]?.chainDepth, 0);
  });

  test('the paper’s protocol (one needle per haystack) at 4K: 100% at depths 0, 0.5 and 1', async () => {
    const run = await runNiah(niahModel(recall), grid());
    assert.equal(run.trials.length, 3);
    assert.ok(run.trials.every((t) => t.exact && t.stopReason === 'stop-token' && t.needlesPerHaystack === 1), JSON.stringify(run.trials));
  });
});

describe('recall model, the cache held at float16 and int8', () => {
  for (const kv of ['f16', 'int8'] as const) {
    test(`16K, depths 0/0.5/1, chunk 256, ${kv} cache: every needle is answered exactly`, async () => {
      const narrow = await loadModel(join(root, 'recall'), { kvDtype: kv === 'f16' ? 'float16' : 'int8' });
      try {
        const run = await runNiah(niahModel(narrow), grid({ lengths: [16384], needlesPerHaystack: 3, kv }));
        assert.deepEqual(
          run.trials.map((t) => [t.depth, t.kv, t.exact]),
          [
            [0, kv, true],
            [0.5, kv, true],
            [1, kv, true],
          ],
        );
      } finally {
        await narrow.close();
      }
    });
  }

  test('a grid that asks for another width than the model holds is refused', async () => {
    await assert.rejects(runNiah(niahModel(recall), grid({ kv: 'int8' })), refusal('KVF_NIAH_BAD_POLICY', /asks for a int8 cache but the model holds float32/));
  });
});

describe('recall model, StreamingLLM (sink 4, window 1024)', () => {
  test('16K: needles at depths 0.25 and 0.5 are evicted and lost; a needle inside the window is still found', async () => {
    const run = await runNiah(niahModel(recall), grid({ lengths: [16384], depths: [0.25, 0.5, 1], needlesPerHaystack: 3, policy: { kind: 'streaming', sink: 4, window: 1024 } }));
    const byDepth = new Map(run.trials.map((t) => [t.depth, t]));
    for (const d of [0.25, 0.5]) {
      assert.equal(byDepth.get(d)?.inWindow, false);
      assert.equal(byDepth.get(d)?.exact, false, `depth ${d}`);
    }
    assert.equal(byDepth.get(1)?.inWindow, true);
    assert.equal(byDepth.get(1)?.exact, true);
  });
});

describe('haystacks', () => {
  test('single-needle recall prompts satisfy RECALL.md’s protocol checker and ask for the planted values', () => {
    const model = niahModel(recall);
    const g = grid({ lengths: [2048], depths: [0, 0.3, 1] });
    const { protocol, plan } = prepareNiah(model, g);
    const layout = recallLayout();
    for (const p of plan) {
      const h = writeHaystack(protocol, p.documentTokens, p.depths, p.seed);
      assert.equal(h.tokens.length, p.documentTokens);
      const needle = h.needles[0]!;
      const prompt = [...h.tokens, ...needle.needle.question];
      const answer = expectedAnswer(layout, prompt);
      assert.equal(recall.tokenizer.decode(answer, false), needle.needle.expected);
      assert.equal(prompt.length + protocol.maxNewTokens, 2048);
    }
  });

  test('depth 0 follows BOS, depth 1 ends right before the question, and several needles keep distinct values', () => {
    const { protocol } = prepareNiah(niahModel(recall), grid({ needlesPerHaystack: 6, needleSize: 3 }));
    const h = writeHaystack(protocol, 1000, [0, 0, 0.5, 0.5, 1, 1], 7);
    assert.equal(h.tokens.length, 1000);
    assert.equal(h.needles[0]?.position, 1);
    const last = h.needles[5]!;
    assert.equal(last.position + last.needle.tokens.length, 1000);
    const values = h.needles.flatMap((n) => [...n.needle.tokens.subarray(1)]);
    assert.equal(new Set(values).size, values.length);
    assert.deepEqual(writeHaystack(protocol, 1000, [0, 0, 0.5, 0.5, 1, 1], 7).tokens, h.tokens, 'a seed rewrites the same haystack');
    for (const n of h.needles) {
      // RECALL.md's multi-needle form: needle `KEY c v1..vk`, question `KEY c`.
      const answer = expectedAnswer(recallLayout(), [...h.tokens, ...n.needle.question]);
      assert.equal(recall.tokenizer.decode(answer, false), n.needle.expected);
    }
  });

  test('a vocabulary without the recall tokens gets the natural-language protocol', async () => {
    const model = niahModel(tiny);
    const protocol = selectProtocol(model, grid());
    assert.equal(protocol.name, 'text');
    const h = writeHaystack(protocol, 3000, [0.5], 1);
    const text = tiny.tokenizer.decode([...h.tokens]);
    assert.match(text, /The special magic number is \d{7}\./);
    const run = await runNiah(model, grid({ lengths: [600], depths: [0.5], chunkSizes: [128] }));
    assert.equal(run.trials[0]?.protocol, 'text');
    assert.match(run.trials[0]?.expected ?? '', /^\d{7}$/);
  });
});

describe('refusals', () => {
  const model = () => niahModel(recall);
  test('a length beyond max_position_embeddings', () => {
    assert.throws(() => prepareNiah(model(), grid({ lengths: [262144] })), refusal('KVF_NIAH_TOO_LONG', /262144 tokens is beyond the model's 131072 positions/));
  });
  test('a depth outside [0, 1]', () => {
    assert.throws(() => prepareNiah(model(), grid({ depths: [0.5, 1.5] })), refusal('KVF_NIAH_BAD_GRID', /--depths: 1.5 is outside \[0, 1\]/));
  });
  test('a streaming window not smaller than the length', () => {
    assert.throws(() => prepareNiah(model(), grid({ policy: { kind: 'streaming', sink: 4, window: 8192 } })), refusal('KVF_NIAH_BAD_POLICY', /--window 8192 .* not smaller than the length 4096/));
  });
  test('streaming without a window', () => {
    assert.throws(() => prepareNiah(model(), grid({ policy: { kind: 'streaming', sink: 4, window: 0 } })), refusal('KVF_NIAH_BAD_POLICY', /needs --window N/));
  });
  test('a tokenizer that cannot express the chosen protocol', () => {
    assert.throws(() => prepareNiah(model(), grid({ protocol: 'text' })), refusal('KVF_NIAH_PROTOCOL', /cannot express the text protocol/));
    assert.throws(() => prepareNiah(niahModel(tiny), grid({ protocol: 'recall' })), refusal('KVF_NIAH_PROTOCOL', /cannot express the recall protocol: it has no "KEY" token/));
  });
  test('more needles per haystack than distinct values', () => {
    assert.throws(() => prepareNiah(model(), grid({ needlesPerHaystack: 40, trials: 20 })), refusal('KVF_NIAH_BAD_GRID', /holds at most 19 distinct needles/));
  });
});

describe('report', () => {
  test('results.jsonl, report.md and a well-formed heatmap hold the numbers', async () => {
    const g = grid({ lengths: [2048, 4096], depths: [0, 1], needlesPerHaystack: 2 });
    const run = await runNiah(niahModel(recall), g);
    const trials = [...run.trials, { ...run.trials[0]!, exact: false, depth: 1, length: 4096 }];
    const dir = join(root, 'out');
    const results = await openResults(dir);
    for (const t of trials) await results.append(t);
    assert.deepEqual(await readResults([results.path]), trials);
    await writeReport(dir, { grid: g, trials, modelDir: recall.folder.dir, protocol: 'recall' });
    const md = readFileSync(join(dir, 'report.md'), 'utf8');
    assert.match(md, /\| 2K \| 100% \(1\/1\) \| 100% \(1\/1\) \| 100% \(2\/2\) \| 7 \|/);
    assert.match(md, /\| 4K \| 100% \(1\/1\) \| 50% \(1\/2\) \| 67% \(2\/3\) \| 15 \|/);
    assert.match(md, /exact match: \*\*80% \(4\/5\)\*\* over 5 trials/);
    assert.match(md, /## By chain depth/);
    assert.equal(reportMarkdown({ grid: g, trials, modelDir: 'm', protocol: 'recall' }).includes('heatmap-chunk256.svg'), true);
    const svg = readFileSync(join(dir, 'heatmap-chunk256.svg'), 'utf8');
    assert.deepEqual(heatmaps({ grid: g, trials, modelDir: 'm', protocol: 'recall' }).get('heatmap-chunk256.svg'), svg);
    const names = checkSvg(svg);
    assert.equal(names.filter((n) => n === 'rect').length, 1 + 4); // background + 2 lengths x 2 depths
    for (const text of ['>50%<', '>1/2<', '>100%<', '>2K<', '>4K<', 'needle depth', 'context length']) assert.ok(svg.includes(text), text);
    assert.match(svg, /fill="#d73027"|fill="#fee08b"/); // the 50% cell is coloured between red and green
  });

  test('chain depths fall in power-of-two buckets', () => {
    assert.deepEqual([0, 1, 2, 3, 4, 31, 32, 511].map(chainBucket), [[0, 0], [1, 1], [2, 3], [2, 3], [4, 7], [16, 31], [32, 63], [256, 511]]);
  });

  test('the SVG checker rejects what a browser would', () => {
    assert.throws(() => checkSvg('<svg><g></svg>'));
    assert.throws(() => checkSvg('<svg><text>a & b</text></svg>'));
    assert.throws(() => checkSvg('<svg width=3></svg>'));
    assert.deepEqual(checkSvg('<svg><text>a &amp; b</text><rect x="1"/></svg>'), ['svg', 'text', 'rect']);
  });
});
