/**
 * int8 and int4 model folders (MatMulNBits projections and lm_head, GatherBlockQuantized
 * embedding) on onnxruntime-node: at accuracy level 0 they compute what a float32 folder of the
 * dequantized weights computes, tied and untied, with a hidden size that is not a multiple of the
 * block; at the default level the fold still equals the single pass; and they hold a fraction of
 * float32's bytes.
 */
import assert from 'node:assert/strict';
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { BlockQuantizer, DEFAULT_BLOCK_SIZE, dequantize, type LlamaSpec, type QuantBits, recallSpec, tinyLlamaSpec } from '@kvfold/model-zoo';
import { type LoadedModel, loadModel } from './index.ts';
import { foldLogits, maxAbsDiff, modelFolder } from './test-models.ts';

const opened: LoadedModel[] = [];
after(async () => {
  for (const m of opened) await m.close();
});

async function open(name: string, spec: LlamaSpec, options: Parameters<typeof modelFolder>[2] = {}): Promise<LoadedModel> {
  const m = await loadModel(await modelFolder(name, spec, options));
  opened.push(m);
  return m;
}

/** The spec with every 2-D weight replaced by what its block quantization reads back as. */
function dequantizedSpec(spec: LlamaSpec, bits: QuantBits): LlamaSpec {
  const quantizer = new BlockQuantizer(bits, DEFAULT_BLOCK_SIZE, false);
  const weights = new Map([...spec.weights].map(([name, t]) => [name, t.shape.length === 2 ? { shape: t.shape, data: dequantize(quantizer.quantize(name, t), bits, DEFAULT_BLOCK_SIZE) } : t]));
  return { ...spec, weights };
}

const ids = (m: LoadedModel) => m.tokenizer.encodeDocument('The cache is carried from chunk to chunk, and positions continue. '.repeat(8)).slice(0, 150);

for (const [label, spec] of [
  ['tiny-llama, tied', tinyLlamaSpec()],
  ['tiny-llama, untied', tinyLlamaSpec({ untied: true })],
  ['recall (hidden 295, one head)', recallSpec({ maxPositions: 4096 })],
] as const) {
  for (const bits of [8, 4] as const) {
    test(`${label}, int${bits} at accuracy level 0: the logits of float32 over the dequantized weights`, async () => {
      const slug = `${label.replace(/\W+/g, '-')}-${bits}`;
      const quantized = await open(`q-${slug}`, spec, { weightDtype: bits === 4 ? 'int4' : 'int8', accuracyLevel: 0 });
      const reference = await open(`dq-${slug}`, dequantizedSpec(spec, bits));
      const tokens = ids(reference);
      const [a, b] = [await foldLogits(quantized.decoder, tokens, 64), await foldLogits(reference.decoder, tokens, 64)];
      const diff = maxAbsDiff(a.logits, b.logits);
      assert.ok(diff <= 1e-4, `max |int${bits} - dequantized float32| = ${diff}`);
      assert.equal(quantized.folder.config.torch_dtype, 'float32');
      assert.deepEqual((quantized.folder.config as { quantization?: { bits: number } }).quantization?.bits, bits);
    });
  }
}

test('int4 at the default accuracy level: folded logits equal the single pass, lm_head runs on the last position, under 0.3 of the bytes', async () => {
  const f32 = await modelFolder('size-f32', tinyLlamaSpec({ untied: true }));
  const m = await open('q4-default', tinyLlamaSpec({ untied: true }), { weightDtype: 'int4' });
  assert.ok(m.decoder.plan.kind === 'in-place' && m.decoder.plan.logitsAt !== null);
  const tokens = ids(m);
  const single = await foldLogits(m.decoder, tokens, tokens.length);
  const folded = await foldLogits(m.decoder, tokens, 16);
  assert.ok(maxAbsDiff(folded.logits, single.logits) <= 1e-4);
  const weightsBytes = (dir: string) => statSync(join(dir, 'onnx', 'model.onnx_data')).size;
  const ratio = weightsBytes(m.folder.dir) / weightsBytes(f32);
  // 4 bits and a float32 scale per 32 weights are 5/32 of float32; this small model also pads its
  // 176-wide down_proj to 192 and keeps the embedding's scales twice (bench:precision measures 123M).
  assert.ok(ratio < 0.3, `int4 weights are ${ratio.toFixed(3)} of float32's`);
});
