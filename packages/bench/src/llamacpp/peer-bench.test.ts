/** The peer benchmark's verdicts on given numbers: greedy agreement, and the bars of both issues at their edges. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { LlamaCppRun } from './llamacpp-run.ts';
import { checkPeerBars, compareGreedy, type Medians, type PeerRow, type PeerWidth, peerTable } from './peer-bench.ts';

test('greedy agreement counts equal positions, finds the first difference and the largest logit gap', () => {
  const a = compareGreedy({ tokenIds: [5, 6, 7, 8], lastLogits: [0, 1, 2] }, { tokenIds: [5, 6, 9, 8], lastLogits: [0, 1.5, 1.75] }, { tokens: 32, generate: 4 });
  assert.deepEqual([a.agreement, a.firstDifference, a.maxAbsLogit], [0.75, 2, 0.5]);
  const same = compareGreedy({ tokenIds: [1, 2], lastLogits: [3] }, { tokenIds: [1, 2], lastLogits: [3] }, { tokens: 8, generate: 2 });
  assert.deepEqual([same.agreement, same.firstDifference, same.maxAbsLogit], [1, null, 0]);
});

const medians = (prefill: number, decode: number, peak: number): Medians => ({ prefillTokensPerSecond: prefill, decodeTokensPerSecond: decode, peakRssMiB: peak });
function row(width: PeerWidth, ours: Medians, peer: Medians): PeerRow {
  return {
    width,
    ggmlType: ({ f32: 'F32', int8: 'Q8_0', int4: 'Q4_0' } as const)[width],
    folderBytes: 1,
    ggufBytes: 1,
    ours: { ...ours, runs: [] },
    llamaCpp: { ...peer, runs: [] as LlamaCppRun[] },
    ratios: medians(ours.prefillTokensPerSecond / peer.prefillTokensPerSecond, ours.decodeTokensPerSecond / peer.decodeTokensPerSecond, ours.peakRssMiB / peer.peakRssMiB),
  };
}

test('bars: prefill at least 1.0x and peak RSS at most 1.2x at every width, decode at least 1.0x at f32 only', () => {
  const edge = [row('f32', medians(100, 10, 120), medians(100, 10, 100)), row('int4', medians(100, 1, 120), medians(100, 10, 100))];
  const bars = checkPeerBars(edge, null, 8192);
  assert.deepEqual(
    bars.map((b) => [b.name, b.pass]),
    [
      ['prefill f32 vs F32: ours / llama.cpp', true],
      ['peak RSS f32 vs F32: ours / llama.cpp', true],
      ['decode after a 8192-token fold, f32: ours / llama.cpp', true],
      ['prefill int4 vs Q4_0: ours / llama.cpp', true],
      ['peak RSS int4 vs Q4_0: ours / llama.cpp', true],
    ],
  );
  const behind = checkPeerBars([row('f32', medians(99, 9.9, 121), medians(100, 10, 100))], null, 8192);
  assert.deepEqual(
    behind.map((b) => b.pass),
    [false, false, false],
  );
});

test('bars: the greedy check passes only when every token agrees', () => {
  const agreement = compareGreedy({ tokenIds: [1, 2], lastLogits: [0] }, { tokenIds: [1, 3], lastLogits: [0] }, { tokens: 8, generate: 2 });
  assert.deepEqual(checkPeerBars([], agreement, 8192), [{ name: "greedy tokens at f32 match llama.cpp's (2 tokens)", measured: '50%', bar: '100%', pass: false }]);
});

test('the table gives each width both engines and the ratio line', () => {
  const lines = peerTable([row('int8', medians(200, 20, 300), medians(100, 10, 600))], 3);
  assert.equal(lines.length, 5);
  assert.match(lines[2] as string, /int8\s+kvfold\s+0\s+200\.0\s+20\.0\s+300/);
  assert.match(lines[3] as string, /int8\s+llama\.cpp Q8_0/);
  assert.match(lines[4] as string, /ours\/llama\.cpp\s+2\.00x\s+2\.00x\s+0\.50x/);
});
