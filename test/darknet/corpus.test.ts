/**
 * Every cfg of ../shared/darknet-cfg (125 real Darknet cfgs): shape inference only (no GPU). Each one
 * either builds, or is refused with ONE CfgError naming the file and the line of the first unsupported
 * section or key. The YOLO detectors whose layers the engine implements must build; the refusals are a
 * fixed list (printed with their reasons).
 */
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { noteMissingShared, sharedDir } from '../helpers/check.js';
import { CfgError } from '../../src/darknet/cfg.js';
import { Network } from '../../src/darknet/network.js';

/** The cfgs that must be refused, with a fragment of the reason. */
const REFUSED: Record<string, string> = {};

/** Detectors that must build (besides: every other cfg not in REFUSED). */
const MUST_BUILD = /^(yolov1|yolov2|yolov3|yolov4|yolov7|yolo\.|yolo-voc|tiny-yolo|Gaussian_yolov3)/;

test('corpus: every cfg builds or is refused with one file:line message', () => {
  const shared = sharedDir();
  if (!shared) return noteMissingShared('the cfg corpus');
  const dir = path.join(shared, 'darknet-cfg');
  const files = fs.readdirSync(dir).filter((f) => f.endsWith('.cfg')).sort();
  assert.ok(files.length >= 125, `expected the 125 cfgs, found ${files.length}`);
  const built: string[] = [];
  const refused: [string, string][] = [];
  const t0 = performance.now();
  for (const f of files) {
    const file = path.join(dir, f);
    try {
      const net = Network.fromFile(file);
      built.push(f);
      assert.ok(net.layers.length > 0);
      for (const l of net.layers) assert.ok(l.output.c >= 1 && l.output.h >= 1 && l.output.w >= 1, `${f} layer ${l.index}`);
    } catch (e) {
      assert.instance(e, CfgError, `${f}: not a CfgError: ${(e as Error).stack}`);
      const err = e as CfgError;
      const m = /^(.*):(\d+): /.exec(err.message);
      assert.ok(m && m[1] === file && Number(m[2]) === err.line, `${f}: message does not start with file:line: ${err.message}`);
      // the line is the offending section header or one of its keys
      const text = fs.readFileSync(file, 'utf8').split('\n')[err.line - 1].trim();
      assert.ok(text.startsWith('[') || (err.key !== undefined && text.replace(/\s/g, '').startsWith(`${err.key}=`)), `${f}:${err.line} is '${text}'`);
      refused.push([f, err.message.slice(dir.length + 1)]);
    }
  }
  const ms = performance.now() - t0;
  console.log(`  corpus: ${built.length} of ${files.length} cfgs build, ${refused.length} refused (${ms.toFixed(0)} ms):`);
  for (const [, msg] of refused) console.log(`    ${msg}`);
  for (const [f, msg] of refused) {
    assert.ok(f in REFUSED, `${f} was refused unexpectedly: ${msg}`);
    assert.ok(msg.includes(REFUSED[f]), `${f}: expected '${REFUSED[f]}' in: ${msg}`);
    assert.ok(!MUST_BUILD.test(f) || /crnn|contrastive|tree/.test(msg), `${f} is a detector that must build`);
  }
  for (const f of Object.keys(REFUSED)) assert.ok(!built.includes(f), `${f} was expected to be refused but built`);
  assert.is(built.length + refused.length, files.length);
  assert.ok(ms < 20000, `shape inference of the corpus took ${ms} ms`);
});

test.run();
