/** The fold graph derived from each export shape, read back as a graph: what it outputs, what it feeds, what it consumes. */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { recallSpec } from '@kvfold/model-zoo';
import onnxProto from 'onnx-proto';
import { deriveFoldGraph, type FoldGraph, readGraph } from './fold-graph.ts';
import { discover } from './io-names.ts';
import { readModelFolder } from './model-folder.ts';
import { modelFolder, tinyLlamaFolder } from './test-models.ts';

const { onnx } = onnxProto;

async function derive(dir: string, mutate?: (m: InstanceType<typeof onnx.ModelProto>) => void): Promise<FoldGraph> {
  const folder = await readModelFolder(dir);
  let bytes: Uint8Array = readFileSync(folder.onnxPath);
  if (mutate) {
    const m = onnx.ModelProto.decode(bytes);
    mutate(m);
    bytes = onnx.ModelProto.encode(m).finish();
  }
  const read = readGraph(bytes);
  const { names, layout } = discover(folder.onnxPath, folder.config, read.inputs, read.outputs);
  return deriveFoldGraph(read, names, layout);
}

const outputsOf = (g: FoldGraph) => (onnx.ModelProto.decode(g.model).graph?.output ?? []).map((o) => o.name as string);

test('GroupQueryAttention: presents stop being outputs, the new rows become outputs, and every present is consumed by its layer', async () => {
  const g = await derive(await tinyLlamaFolder('fg-gqa'));
  assert.equal(g.plan.kind, 'in-place');
  if (g.plan.kind !== 'in-place') return;
  assert.deepEqual(new Set(g.plan.layers.map((l) => `${l.past}/${l.order}`)), new Set(['capacity/rows-first']));
  const outs = outputsOf(g);
  assert.ok(!outs.some((o) => o.startsWith('present.')));
  assert.deepEqual(outs, ['logits', ...g.plan.layers.flatMap((l) => [l.rows.key, l.rows.value])]);
  const graph = onnx.ModelProto.decode(g.model).graph;
  const consumed = new Set((graph?.node ?? []).flatMap((n) => n.input ?? []));
  for (const n of graph?.node ?? []) {
    if (n.opType !== 'GroupQueryAttention') continue;
    for (const present of (n.output ?? []).slice(1)) assert.ok(consumed.has(present), `${present} is consumed (or ONNX Runtime holds it until the run ends)`);
  }
});

test('Concat with one KV head feeds a prefix of the buffer; with several, a slice of it made in the graph', async () => {
  const recall = await derive(await modelFolder('fg-recall', recallSpec()));
  assert.ok(recall.plan.kind === 'in-place' && recall.plan.layers.every((l) => l.past === 'prefix' && l.order === 'heads-first'));
  const tiny = await derive(await tinyLlamaFolder('fg-matmul', {}, { attention: 'matmul' }));
  assert.ok(tiny.plan.kind === 'in-place' && tiny.plan.layers.every((l) => l.past === 'sliced'));
  const nodes = onnx.ModelProto.decode(tiny.model).graph?.node ?? [];
  const producer = new Map(nodes.flatMap((n) => (n.output ?? []).map((o) => [o, n] as const)));
  const slices = nodes.filter((n) => n.opType === 'Slice' && (n.output?.[0] ?? '').startsWith('kvfold.fold.past.'));
  assert.equal(slices.length, 4, 'one Slice per past input');
  for (const slice of slices) {
    // Each slices its past, reshaped in place by a shape that waits for its layer's new rows: made when its layer runs.
    const gate = producer.get(slice.input?.[0] ?? '');
    assert.equal(gate?.opType, 'Reshape');
    assert.match(gate?.input?.[0] ?? '', /^past_key_values\.\d+\.(key|value)$/);
  }
});

test('an export whose new rows are not a tensor of the graph runs as it is, saying why', async () => {
  const rotary = await derive(await tinyLlamaFolder('fg-rotary'), (m) => {
    for (const n of m.graph?.node ?? []) {
      if (n.opType === 'GroupQueryAttention') n.attribute = [...(n.attribute ?? []), { name: 'do_rotary', type: onnx.AttributeProto.AttributeType.INT, i: 1 }];
    }
  });
  assert.deepEqual(rotary.plan, { kind: 'standard', reason: 'present.0.key: GroupQueryAttention rotates the keys inside the op, so its new rows are not a tensor of the graph' });
  const odd = await derive(await tinyLlamaFolder('fg-odd', {}, { attention: 'matmul' }), (m) => {
    for (const n of m.graph?.node ?? []) if (n.output?.[0] === 'present.1.value') n.opType = 'Max';
  });
  assert.equal(odd.plan.kind, 'standard');
  assert.match((odd.plan as { reason: string }).reason, /present\.1\.value comes from a Max node/);
  assert.ok(outputsOf(odd).includes('present.1.value'), 'the standard graph is the export as it is');
});
