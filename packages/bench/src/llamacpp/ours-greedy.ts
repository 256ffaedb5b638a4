/**
 * Our engine's side of the validation against llama.cpp, in a process of its own: the same prompt
 * ids folded in chunks, the last position's logits, and the greedy continuation after them.
 */
import { foldAll, generate } from '@kvfold/fold-core';
import { OnnxDecoder, readModelFolder } from '@kvfold/onnx';
import { benchIds } from '../engine/measure-engine.ts';
import { argmax, type GreedyOptions, type GreedyRun } from './llamacpp-run.ts';

export interface OursGreedyOptions extends GreedyOptions {
  readonly modelDir: string;
  readonly chunkSize: number;
  readonly threads: number;
}

export async function oursGreedy(o: OursGreedyOptions): Promise<GreedyRun> {
  const decoder = await OnnxDecoder.create(await readModelFolder(o.modelDir), { threads: o.threads });
  try {
    const prompt = benchIds(o.tokens, decoder.layout.vocabSize);
    const cache = await decoder.createCache({ capacity: o.tokens + o.generate + 1 });
    const { lastLogits } = await foldAll(decoder, cache, prompt, { chunkSize: o.chunkSize });
    if (!lastLogits) throw new Error('the fold of the validation prompt gave no logits');
    const first = argmax(lastLogits);
    const rest = await generate(decoder, cache, Int32Array.of(first), { maxNewTokens: o.generate - 1 });
    await cache.release();
    return { tokenIds: [first, ...rest.tokenIds], lastLogits: Array.from(lastLogits) };
  } finally {
    await decoder.close();
  }
}
