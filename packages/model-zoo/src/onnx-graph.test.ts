/** GraphBuilder's two ways to external data — in memory at serialize, streamed as weights are added — give the same bytes. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { EXTERNAL_ALIGNMENT, ExternalData, MemorySink } from './external-data.ts';
import { buildLlamaGraph } from './llama-graph.ts';
import { DataType, GraphBuilder, onnx } from './onnx-graph.ts';
import { tinyLlamaSpec } from './tiny-llama.ts';

test('a streaming builder writes each large initializer when it is added, aligned, and keeps small ones inline', () => {
  const sink = new MemorySink();
  const external = new ExternalData('w.bin', 1024, sink);
  const g = new GraphBuilder('g', { external });
  g.float('small', [4], new Float32Array(4));
  assert.equal(external.length, 0, 'below the threshold: inline');
  g.float('a', [300], new Float32Array(300).fill(1));
  assert.equal(external.length, 1200, 'written when added');
  g.float16('b', [600], new Uint16Array(600).fill(0x3c00));
  assert.equal(external.length, EXTERNAL_ALIGNMENT + 1200, 'the next tensor starts at an aligned offset');
  assert.throws(() => g.serialize(17, { externalThreshold: 1, externalName: 'x' }), /streaming GraphBuilder .* takes no options/);
  assert.equal(g.serialize(17).externalData, null, 'the sink has the data');
  assert.throws(() => new GraphBuilder('m').serialize(17), /options set the external-data threshold/);
});

for (const [label, options] of [
  ['tiny-llama, GroupQueryAttention', { positionIds: true }],
  ['untied, float16 cache, MatMul attention, no position_ids', { positionIds: false, kvDtype: 'float16', attention: 'matmul' }],
  ['float16 weights', { positionIds: true, weightDtype: 'float16' }],
] as const) {
  test(`streamed and in-memory serialisation give identical model and data bytes (${label})`, () => {
    const spec = tinyLlamaSpec({ untied: label.startsWith('untied') });
    const inMemory = buildLlamaGraph(spec.config, spec.weights, options, { externalThreshold: 1024, externalName: 'model.onnx_data' });
    const sink = new MemorySink();
    const streamed = buildLlamaGraph(spec.config, spec.weights, options, new ExternalData('model.onnx_data', 1024, sink));
    assert.ok(Buffer.from(streamed.model).equals(Buffer.from(inMemory.model)), 'model.onnx');
    assert.ok(inMemory.externalData && Buffer.from(sink.bytes() as Uint8Array).equals(Buffer.from(inMemory.externalData)), 'model.onnx_data');
  });
}

test('float16 weights are FLOAT16 initializers Cast to float32; norms stay float32', () => {
  const spec = tinyLlamaSpec();
  const { model } = buildLlamaGraph(spec.config, spec.weights, { positionIds: true, weightDtype: 'float16' }, { externalThreshold: Number.POSITIVE_INFINITY, externalName: 'x' });
  const graph = onnx.ModelProto.decode(model).graph;
  assert.ok(graph);
  const types = Object.fromEntries((graph.initializer ?? []).map((t) => [t.name, t.dataType]));
  assert.equal(types['model.layers.0.mlp.down_proj.weight'], DataType.FLOAT16);
  assert.equal(types['model.embed_tokens.weight'], DataType.FLOAT16);
  assert.equal(types['model.layers.0.input_layernorm.weight'], DataType.FLOAT);
  const casts = (graph.node ?? []).filter((n) => n.opType === 'Cast' && n.input?.[0] === 'model.layers.0.mlp.down_proj.weight');
  assert.equal(casts.length, 1);
});
