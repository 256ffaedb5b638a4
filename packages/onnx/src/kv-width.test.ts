/**
 * Caches held at float16 and int8 on onnxruntime-node, for every way the fold graph feeds a past
 * (GroupQueryAttention over the whole buffer, Concat over a one-head prefix, Concat sliced to the
 * valid rows): the session's buffer holds that width (half of float32, a byte a value plus a
 * float32 scale a head row), the fold stays close to float32's, generation works from it, and an
 * export run as it is refuses a width it cannot hold.
 */
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { generate, type KvDtype, kvRowBytes } from '@kvfold/fold-core';
import { recallSpec } from '@kvfold/model-zoo';
import { type LoadedModel, loadModel } from './index.ts';
import { foldLogits, maxAbsDiff, modelFolder, tinyLlamaFolder } from './test-models.ts';

const opened: LoadedModel[] = [];
after(async () => {
  for (const m of opened) await m.close();
});
async function open(dir: string, kvDtype?: KvDtype): Promise<LoadedModel> {
  const m = await loadModel(dir, kvDtype ? { kvDtype } : {});
  opened.push(m);
  return m;
}

/** The largest |logit| difference each width may cause on these small random models. */
const TOLERANCE: Record<Exclude<KvDtype, 'float32'>, number> = { float16: 0.01, int8: 0.1 };

const cases = [
  ['tiny-llama: GroupQueryAttention over the whole buffer', () => tinyLlamaFolder('width-gqa'), 'capacity'],
  ['tiny-llama as plain optimum: Concat over the valid rows, sliced in the graph', () => tinyLlamaFolder('width-concat', {}, { attention: 'matmul' }), 'sliced'],
  ['recall: Concat over a one-head prefix', () => modelFolder('width-recall', recallSpec({ maxPositions: 4096 })), 'prefix'],
] as const;

for (const [label, folder, feed] of cases) {
  for (const kvDtype of ['float16', 'int8'] as const) {
    test(`${label}, held at ${kvDtype}: its bytes, close to float32, and answers from it`, async () => {
      const dir = await folder();
      const [wide, narrow] = [await open(dir), await open(dir, kvDtype)];
      assert.ok(narrow.decoder.plan.kind === 'in-place' && narrow.decoder.plan.held === kvDtype);
      assert.equal(narrow.decoder.plan.layers[0]?.past, feed);
      assert.equal(narrow.decoder.layout.dtype, kvDtype);
      const tokens = wide.tokenizer.encodeDocument('The cache is carried from chunk to chunk; positions continue. '.repeat(12)).slice(0, 300);
      assert.ok(tokens.length > 100);
      const [a, b] = [await foldLogits(wide.decoder, tokens, 64), await foldLogits(narrow.decoder, tokens, 64)];
      const { kvHeads, headDim } = wide.decoder.layout;
      const expected = kvDtype === 'float16' ? 0.5 : (headDim + 4) / (4 * headDim);
      assert.equal(b.cache.bytes / a.cache.bytes, expected, `${kvDtype} bytes against float32's (${kvHeads} heads of ${headDim})`);
      assert.equal(b.cache.bytes, tokens.length * kvRowBytes(narrow.decoder.layout));
      const worst = maxAbsDiff(a.logits, b.logits);
      assert.ok(worst < TOLERANCE[kvDtype], `max |logit difference| ${kvDtype} vs float32: ${worst}`);
      // Random weights' rows round; recall's hand-set rows are few distinct values that int8 holds exactly.
      if (feed !== 'prefix' || kvDtype === 'float16') assert.ok(worst > 0, 'a narrower cache changes the logits a little');
      const g = await generate(narrow.decoder, b.cache, Int32Array.of(tokens[5] as number), { maxNewTokens: 6 });
      assert.equal(g.tokenIds.length, 6);
      assert.equal(b.cache.length, tokens.length, 'the answer was rewound');
    });
  }
}

test('an export run as it is holds the cache at its own width: another is refused naming both and what to use', async () => {
  const dir = await tinyLlamaFolder('width-standard');
  await assert.rejects(loadModel(dir, { kvDtype: 'int8', foldGraph: 'standard' }), {
    code: 'KVF_MODEL_KV_WIDTH',
    message: /a int8 KV cache needs the fold graph, .* this session runs standard graph, .* \(float32\): use --kv f32/,
  });
});
