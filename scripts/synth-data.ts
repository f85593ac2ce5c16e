/**
 * Writes a synthetic shapes dataset (src/data/synth.ts generateSynth) with a chosen class set: the data
 * of docs/finetune.md (dataset A: the demo's circle/square/triangle; dataset B: another task with
 * another class count, to fine-tune on).
 *
 *   node --import tsx scripts/synth-data.ts --out DIR [--classes ring,cross,diamond,hexagon]
 *       [--train 1000] [--val 100] [--size 128] [--seed 1] [--difficulty standard]
 *
 * Without --classes the output is the demo's generator's (circle, square, triangle). Shapes:
 * SYNTH_SHAPES (circle, square, triangle, ring, cross, diamond, hexagon).
 */
import { parseArgs } from 'node:util';
import { generateSynth, SYNTH_SHAPES, type SynthDifficultyName, type SynthShape } from '../src/data/synth.js';

const { values: a } = parseArgs({
  options: {
    out: { type: 'string' },
    classes: { type: 'string' },
    train: { type: 'string', default: '1000' },
    val: { type: 'string', default: '100' },
    size: { type: 'string', default: '128' },
    seed: { type: 'string', default: '1' },
    difficulty: { type: 'string', default: 'standard' },
  },
});
if (!a.out) {
  console.error(`usage: synth-data.ts --out DIR [--classes a,b,...] [--train N --val N --size S --seed K]  (shapes: ${SYNTH_SHAPES.join(', ')})`);
  process.exit(2);
}
const r = generateSynth({
  out: a.out,
  classes: a.classes ? (a.classes.split(',').map((s) => s.trim()) as SynthShape[]) : undefined,
  trainCount: Number(a.train),
  valCount: Number(a.val),
  size: Number(a.size),
  seed: Number(a.seed),
  difficulty: a.difficulty as SynthDifficultyName,
  log: (l) => console.log(l),
});
console.log(`${r.data}: ${r.train} train + ${r.val} val images, ${r.boxes} boxes${r.cached ? ' (already there)' : ''} in ${(r.ms / 1000).toFixed(1)} s`);
