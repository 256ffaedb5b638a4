/**
 * The ceiling a fold's FLOPs are measured against: ONNX Runtime's own MatMul on square float32
 * matrices, with the same intra-op threads, best of several runs over a few sizes.
 */
import { DataType, GraphBuilder } from '@kvfold/model-zoo';
import * as ort from 'onnxruntime-node';

/** Square sizes tried: small enough to be quick, large enough for MLAS to reach its peak. */
const SIZES = [1024, 2048];
/** Timed batches per size; the best one counts. */
const BATCHES = 5;
/** FLOPs per timed batch, so each takes long enough to time. */
const BATCH_FLOPS = 4e9;

export interface MatMulCeiling {
  readonly gflops: number;
  readonly size: number;
  readonly threads: number;
}

export async function measureMatMulCeiling(threads: number): Promise<MatMulCeiling> {
  let best: MatMulCeiling = { gflops: 0, size: 0, threads };
  for (const n of SIZES) {
    const g = new GraphBuilder('matmul');
    g.input({ name: 'a', elemType: DataType.FLOAT, shape: [n, n] });
    g.input({ name: 'b', elemType: DataType.FLOAT, shape: [n, n] });
    g.node('MatMul', ['a', 'b'], {}, 'c');
    g.output({ name: 'c', elemType: DataType.FLOAT, shape: [n, n] });
    const { model } = g.serialize(17, { externalThreshold: Number.POSITIVE_INFINITY, externalName: 'unused' });
    const session = await ort.InferenceSession.create(model, { intraOpNumThreads: threads, interOpNumThreads: 1 });
    const feeds = { a: new ort.Tensor('float32', new Float32Array(n * n).fill(0.5), [n, n]), b: new ort.Tensor('float32', new Float32Array(n * n).fill(0.25), [n, n]) };
    const fetches = { c: new ort.Tensor('float32', new Float32Array(n * n), [n, n]) };
    const flops = 2 * n ** 3;
    const runs = Math.max(1, Math.round(BATCH_FLOPS / flops));
    await session.run(feeds, fetches);
    for (let b = 0; b < BATCHES; b++) {
      const t0 = performance.now();
      for (let r = 0; r < runs; r++) await session.run(feeds, fetches);
      const gflops = (flops * runs) / ((performance.now() - t0) * 1e6);
      if (gflops > best.gflops) best = { gflops, size: n, threads };
    }
    await session.release();
  }
  return best;
}
