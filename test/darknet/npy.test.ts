/** The .npy reader/writer. */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { noteMissingShared, sharedDir } from '../helpers/check.js';
import { encodeNpy, parseNpy, readNpyF32, writeNpy } from '../../src/util/npy.js';

test('npy round trip (float32, float64, int32, 1-D and 4-D), header alignment', () => {
  const f = Float32Array.from([1.5, -2, 3e-8, Number.NaN, 0, -0]);
  const b = encodeNpy([2, 1, 3, 1], f);
  assert.is((b.length - f.byteLength) % 64, 0, 'header padded to 64 bytes');
  const r = parseNpy(b);
  assert.equal(r.shape, [2, 1, 3, 1]);
  assert.is(r.dtype, '<f4');
  assert.equal([...new Uint32Array((r.data as Float32Array).buffer)], [...new Uint32Array(f.buffer)]);
  const d = parseNpy(encodeNpy([3], Float64Array.from([1, 2, 3])));
  assert.equal([d.shape, d.dtype, [...(d.data as Float64Array)]], [[3], '<f8', [1, 2, 3]]);
  const i = parseNpy(encodeNpy([2, 2], Int32Array.from([1, -2, 3, -4])));
  assert.equal([...(i.data as Int32Array)], [1, -2, 3, -4]);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'npy-'));
  writeNpy(path.join(dir, 'a.npy'), [6], f);
  assert.equal(readNpyF32(path.join(dir, 'a.npy')).shape, [6]);
  fs.rmSync(dir, { recursive: true });
});

test('npy errors', () => {
  assert.throws(() => parseNpy(new Uint8Array(20), 'x.npy'), /x\.npy: not a \.npy file/);
  const b = encodeNpy([4], new Float32Array(4));
  assert.throws(() => parseNpy(b.slice(0, b.length - 4), 'x.npy'), /x\.npy: 12 data bytes, shape \(4\) of <f4 needs 16/);
  assert.throws(() => encodeNpy([3], new Float32Array(4)), /shape \(3\) holds 3 values, data has 4/);
});

test('reads the golden input.npy files', () => {
  const shared = sharedDir();
  if (!shared) return noteMissingShared('golden npy files');
  const a = readNpyF32(path.join(shared, 'golden/networks/out_v3t_b2/input.npy'));
  assert.equal(a.shape, [2, 3, 96, 128]);
  assert.is(a.data.length, 2 * 3 * 96 * 128);
});

test.run();
