/**
 * The margin proofs as node:test cases, for one precision. Each precision runs in its own test
 * file (so its own process): the scans are hot loops, and V8 keeps them fast only while one
 * rounding function flows through them.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { recallLayout } from './layout.ts';
import { analyseInductionHead, analysePreviousTokenHead, analyseReadout } from './margins.ts';
import type { Precision } from './reference-forward.ts';
import { recallSpec } from './index.ts';
import { LOGIT_SCALE, MATCH_SCORE, PREVIOUS_SCORE_PER_PAIR } from './weights.ts';

/** Stated margins (RECALL.md); each measured value exceeds its bound in both precisions. */
export const STATED = {
  /** Offset 1 beats every other offset by >= 1.570 pair-units = 31.40 score. */
  previousTokenMargin: 1.57 * PREVIOUS_SCORE_PER_PAIR,
  /** A match beats every non-match at every distance by >= 34.0. */
  inductionMargin: 34,
  /** The copied token's logit beats every other logit by >= 19.99. */
  logitMargin: LOGIT_SCALE - 0.01,
} as const;

/** Registers the margin tests for `precision`. */
export function marginTests(precision: Precision): void {
  const spec = recallSpec();
  const layout = recallLayout();
  const last = layout.maxPositions - 1;
  const previous = analysePreviousTokenHead(spec, layout, { precision });
  const induction = analyseInductionHead(spec, layout, { precision });
  // (Both scans run once, up front: each takes a second or two and several tests read them.)

  test(`${precision}: the previous-token head puts its peak at offset 1 against every offset 0..${last}`, () => {
    assert.equal(previous.queryPosition, last);
    assert.equal(previous.scores.length, layout.maxPositions);
    assert.deepEqual(previous.pairs, Array.from({ length: 16 }, (_, j) => j));
    assert.ok(Math.abs(previous.scoreAtOne - 16 * PREVIOUS_SCORE_PER_PAIR) < 1e-3, `score at offset 1: ${previous.scoreAtOne}`);
    assert.equal(previous.bestRivalOffset, 0, 'the nearest rival is the token itself');
    assert.ok(previous.margin >= STATED.previousTokenMargin, `margin ${previous.margin}`);
    assert.ok(previous.margin < STATED.previousTokenMargin + 0.01, 'the stated margin is tight, not loose');
  });

  test(`${precision}: the previous-token head keeps all but 4e-9 of its attention on offset 1 at ${layout.maxPositions} tokens`, () => {
    assert.ok(1 - previous.massOnOne < 1e-12, `actual mass off offset 1: ${1 - previous.massOnOne}`);
    assert.ok(1 - previous.worstCaseMassOnOne < 4e-9, `worst-case mass off offset 1: ${1 - previous.worstCaseMassOnOne}`);
  });

  test(`${precision}: the margin holds wherever the query sits`, () => {
    for (const queryPosition of [1, 2, 1000, 65536]) {
      const report = analysePreviousTokenHead(spec, layout, { precision, queryPosition });
      const rivals = queryPosition === 1 ? [report.scores[0] as number] : [...report.scores].filter((_, offset) => offset !== 1);
      assert.ok((report.scores[1] as number) - Math.max(...rivals) >= STATED.previousTokenMargin, `query at ${queryPosition}`);
    }
  });

  test(`${precision}: the induction head separates match from non-match at every offset 0..${last}`, () => {
    // The fastest pair holding two codes (pair 80) turns theta = 0.0737 rad over 131071 tokens:
    // a match keeps cos(theta) - sin(theta) = 0.924 of MATCH_SCORE, a non-match gets sin(theta) = 0.0736.
    assert.ok(induction.minMatch >= MATCH_SCORE * 0.92, `weakest match ${induction.minMatch}`);
    assert.ok(induction.maxNonMatch <= MATCH_SCORE * 0.075, `strongest non-match ${induction.maxNonMatch}`);
    assert.ok(induction.margin >= STATED.inductionMargin, `margin ${induction.margin}`);
    // Layer 0 leaks < 4e-9 of its attention; that moves a layer-1 key's code by < 4e-9 of one unit,
    // and any score by < 4e-9 * 2 * MATCH_SCORE: far below the slack over the stated margin.
    const leak = (1 - previous.worstCaseMassOnOne) * 2 * MATCH_SCORE;
    assert.ok(induction.margin - 2 * leak >= STATED.inductionMargin);
    assert.ok(1 - induction.worstCaseMassOnMatch < 3e-10, `worst-case mass off the match: ${1 - induction.worstCaseMassOnMatch}`);
  });

  test(`${precision}: lm_head turns the copied token into the answer, even with the worst-case leak`, () => {
    const readout = analyseReadout(spec, layout, { precision, massOnMatch: induction.worstCaseMassOnMatch });
    assert.ok(readout.exactMargin >= STATED.logitMargin, `exact ${readout.exactMargin}`);
    assert.ok(readout.mixedMargin >= STATED.logitMargin, `mixed ${readout.mixedMargin}`);
  });
}
