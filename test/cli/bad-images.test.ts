/**
 * One bad file never stops a whole folder: `detect` and `val` skip images that cannot be read or decoded
 * (garbage bytes, a truncated PNG, a directory named like an image, a list entry naming nothing) with a
 * warning naming each, run the rest exactly as a clean run would, return the skipped list, and the CLI
 * exits 1.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { PNG } from 'pngjs';
import { getGpu } from '../helpers/gpu.js';
import { detect, detectWithNetwork, listSources, loadDetectNetwork, type ImageResult } from '../../src/cli/detect.js';
import type { DetectNetwork } from '../../src/api/detector.js';
import { networkDetector, runVal } from '../../src/api/val.js';
import { packageRoot } from '../../src/util/paths.js';
import { Rng } from '../../src/util/rng.js';

const root = packageRoot();
const MINI = path.join(root, 'fixtures/cfg/yolo-mini.cfg');
const CONF = 0.01;

/** A PNG of seeded noise (random weights find objects in it at a low threshold). */
function noisePng(width: number, height: number, seed: number): Buffer {
  const png = new PNG({ width, height });
  const rng = new Rng(seed);
  for (let i = 0; i < png.data.length; i++) png.data[i] = i % 4 === 3 ? 255 : Math.floor(rng.next() * 256);
  return PNG.sync.write(png);
}

/**
 * good/: a.png, b.jpg, c.png; bad/: the same three plus bad.png (garbage bytes), trunc.png (a PNG cut in
 * its image data: the header reads, the decode fails) and x.png (a directory).
 */
function folders(): { dir: string; good: string; bad: string } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'yw-bad-'));
  const good = path.join(dir, 'good');
  const bad = path.join(dir, 'bad');
  for (const d of [good, bad]) {
    fs.mkdirSync(d);
    fs.writeFileSync(path.join(d, 'a.png'), noisePng(64, 48, 1));
    fs.copyFileSync(path.join(root, 'fixtures/images/smooth-40x24.jpg'), path.join(d, 'b.jpg'));
    fs.writeFileSync(path.join(d, 'c.png'), noisePng(40, 56, 2));
  }
  fs.writeFileSync(path.join(bad, 'bad.png'), Buffer.from('this is not an image, only some garbage bytes'));
  const full = noisePng(48, 48, 3);
  fs.writeFileSync(path.join(bad, 'trunc.png'), full.subarray(0, Math.floor(full.length / 2)));
  fs.mkdirSync(path.join(bad, 'x.png'));
  return { dir, good, bad };
}

/** What a run found, per image file name. */
const found = (res: readonly ImageResult[]) => res.map((r) => ({ image: path.basename(r.file), width: r.width, height: r.height, objects: r.objects }));

test('detect over a folder: every good image runs as in a clean run; each bad one is named, skipped and returned', async () => {
  const gpu = await getGpu();
  const { dir, good, bad } = folders();
  try {
    const clean = await detect({ cfg: MINI, source: good, conf: CONF, gpu, out: path.join(dir, 'out-good'), log: () => {} });
    assert.equal(clean.skipped, []);
    const logs: string[] = [];
    const out = path.join(dir, 'out-bad');
    const res = await detect({ cfg: MINI, source: bad, conf: CONF, gpu, out, log: (l) => logs.push(l) });
    assert.is(res.length, 3);
    assert.ok(res.reduce((n, r) => n + r.objects.length, 0) > 0, 'the clean images have detections at this threshold');
    assert.equal(found(res), found(clean), 'the good images: the same detections as without the bad files');
    assert.equal(res.skipped.map((s) => path.basename(s.file)), ['x.png', 'bad.png', 'trunc.png'], 'the directory at the listing, the others when read');
    const why = Object.fromEntries(res.skipped.map((s) => [path.basename(s.file), s.reason]));
    assert.match(why['bad.png'], /^not a PNG or JPEG file/);
    assert.match(why['trunc.png'], /^cannot decode PNG/);
    assert.is(why['x.png'], 'is a directory, not an image file');
    assert.ok(logs.includes(`warning: skipped ${path.join(bad, 'bad.png')}: ${why['bad.png']}`), logs.join('\n'));
    assert.ok(logs.some((l) => l.startsWith(`warning: skipped ${path.join(bad, 'trunc.png')}: cannot decode PNG`)));
    assert.ok(logs.some((l) => l.startsWith(`warning: skipped ${path.join(bad, 'x.png')}: is a directory`)));
    assert.is(logs[logs.length - 1], 'detect: 3 images, 3 skipped (see warnings above)');
    assert.equal(fs.readdirSync(out).filter((f) => f.endsWith('.png')).sort(), ['a.png', 'b.png', 'c.png']);
    // nothing readable at all: a clear error, not an empty success
    await detect({ cfg: MINI, source: path.join(bad, 'bad.png'), gpu, log: () => {} }).then(
      () => assert.unreachable('no image could be read'),
      (e: Error) => assert.match(e.message, /none of the 1 images could be read \(first: skipped .*bad\.png: not a PNG or JPEG file/),
    );
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('detect over a list file: every missing entry is named list:line before any image runs; the rest run', async () => {
  const gpu = await getGpu();
  const { dir, good, bad } = folders();
  try {
    const list = path.join(bad, 'list.txt');
    fs.writeFileSync(list, 'a.png\nmissing1.png\n\n# a comment\nc.png\nsub/missing2.png\nx.png\n');
    const logs: string[] = [];
    let atLoad = -1;
    const res = await detect({
      cfg: MINI, source: list, conf: CONF, gpu, log: (l) => logs.push(l),
      loader: (g, cfg, w) => {
        atLoad = logs.length;
        return loadDetectNetwork(g, cfg, w);
      },
    });
    const warnings = [
      `warning: ${list}:2: image missing1.png not found; skipped`,
      `warning: ${list}:6: image sub/missing2.png not found; skipped`,
      `warning: ${list}:7: image x.png is a directory, not an image file; skipped`,
    ];
    assert.equal(logs.slice(0, 3), warnings, 'all of them, first, with the list file and line');
    assert.is(atLoad, 3, 'reported before the network was even loaded');
    assert.equal(res.skipped, [
      { file: 'missing1.png', reason: 'not found', listed: `${list}:2` },
      { file: 'sub/missing2.png', reason: 'not found', listed: `${list}:6` },
      { file: 'x.png', reason: 'is a directory, not an image file', listed: `${list}:7` },
    ]);
    const clean = await detect({ cfg: MINI, source: good, conf: CONF, gpu, log: () => {} });
    assert.equal(found(res), found(clean).filter((r) => r.image !== 'b.jpg'));
    assert.is(logs[logs.length - 1], 'detect: 2 images, 3 skipped (see warnings above)');
    // listSources (every entry must exist) names all the missing ones at once
    assert.throws(() => listSources(list), (e: Error) => e.message.split('\n').length === 3 && e.message.includes(`${list}:6: image sub/missing2.png not found`));
    // no entry left: a clear error before anything runs
    const none = path.join(dir, 'none.txt');
    fs.writeFileSync(none, 'nope1.png\nnope2.png\n');
    await detect({ cfg: MINI, source: none, gpu, log: () => {}, loader: () => assert.unreachable('no network is loaded') as never }).then(
      () => assert.unreachable(),
      (e: Error) => assert.match(e.message, /no image to run in .*none\.txt: none of its 2 entries is an image file \(first: .*none\.txt:1: image nope1\.png not found\)/),
    );
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('detect --batch 2: a bad image in a batch does not lose its batch-mate (same batches, same detections as without it)', async () => {
  const gpu = await getGpu();
  const { dir, bad } = folders();
  const net = await loadDetectNetwork(gpu, MINI, undefined);
  try {
    const shapes: number[][] = [];
    const spy: DetectNetwork = {
      ...net,
      forwardHeads: (x) => {
        shapes.push([...x.shape]);
        return net.forwardHeads(x);
      },
    };
    const a = path.join(bad, 'a.png');
    const c = path.join(bad, 'c.png');
    const withBad = await detectWithNetwork(gpu, spy, [a, path.join(bad, 'bad.png'), c, path.join(bad, 'trunc.png')], { conf: CONF, batch: 2 });
    const clean = await detectWithNetwork(gpu, spy, [a, c], { conf: CONF, batch: 2 });
    assert.equal(shapes, [[2, 3, 128, 128], [2, 3, 128, 128]], 'a and c went through one forward of 2 in both runs');
    assert.equal(found(withBad), found(clean));
    assert.ok(withBad.every((r) => r.objects.length > 0));
    assert.equal(withBad.skipped.map((s) => path.basename(s.file)), ['bad.png', 'trunc.png']);
    assert.equal(clean.skipped, []);
  } finally {
    net.dispose?.();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('val with a network: an undecodable image is named, excluded from scoring (the rest score as a clean split), listed in skipped', async () => {
  const gpu = await getGpu();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'yw-badval-'));
  const net = await loadDetectNetwork(gpu, MINI, undefined);
  try {
    const make = (name: string, withBad: boolean): string => {
      const r = path.join(dir, name);
      const img = path.join(r, 'images/val');
      const lbl = path.join(r, 'labels/val');
      fs.mkdirSync(img, { recursive: true });
      fs.mkdirSync(lbl, { recursive: true });
      fs.writeFileSync(path.join(img, 'a.png'), noisePng(64, 48, 1));
      fs.writeFileSync(path.join(lbl, 'a.txt'), '0 0.5 0.5 0.4 0.5\n');
      fs.writeFileSync(path.join(img, 'c.png'), noisePng(40, 56, 2));
      fs.writeFileSync(path.join(lbl, 'c.txt'), '2 0.3 0.4 0.5 0.5\n1 0.7 0.7 0.3 0.3\n');
      if (withBad) {
        const full = noisePng(48, 48, 3);
        fs.writeFileSync(path.join(img, 'b.png'), full.subarray(0, Math.floor(full.length / 2))); // passes the header scan
        fs.writeFileSync(path.join(lbl, 'b.txt'), '1 0.5 0.5 0.2 0.2\n');
        fs.writeFileSync(path.join(img, 'e.png'), Buffer.from('garbage')); // dropped by the scan
      }
      const yaml = path.join(r, 'data.yaml');
      fs.writeFileSync(yaml, 'path: .\ntrain: images/val\nval: images/val\nnames: [circle, square, triangle]\n');
      return yaml;
    };
    const run = async (yaml: string, lines: string[]) => runVal({ data: yaml, out: path.join(path.dirname(yaml), 'out'), detector: networkDetector(gpu, net, { batch: 2 }), conf: 0.001, iou: 0.6, log: (l) => lines.push(l) });
    const cleanLines: string[] = [];
    const clean = await run(make('clean', false), cleanLines);
    const lines: string[] = [];
    const r = await run(make('bad', true), lines);
    assert.equal(clean.skipped, []);
    assert.equal(r.skipped.map((s) => path.basename(s.file)), ['e.png', 'b.png'], 'the scan\'s and the decode\'s');
    assert.match(r.skipped[1].reason, /^cannot decode PNG/);
    assert.ok(lines.some((l) => l.startsWith(`warning: skipped ${r.skipped[1].file}: cannot decode PNG`) && l.endsWith('(not scored, nor its 1 labelled object)')), lines.join('\n'));
    assert.ok(lines.includes('warning: the mAP covers the 2 scored images only: 2 unreadable images are excluded from scoring together with their labels (not counted as images without detections)'));
    assert.is(lines[lines.length - 1], 'val: 2 images scored, 2 skipped (see warnings above); the mAP covers the scored images only');
    // the scored images score exactly as the clean split
    assert.equal(r.images.map((im) => im.id), ['a', 'c']);
    assert.ok(clean.summary.detections > 0);
    assert.is(r.summary.detections, clean.summary.detections);
    assert.is(r.summary.instances, 3);
    assert.is(r.summary.map50, clean.summary.map50);
    assert.is(r.summary.map50_95, clean.summary.map50_95);
    const preds = (n: string) => fs.readFileSync(path.join(dir, n, 'out/predictions.json'), 'utf8');
    assert.is(preds('bad'), preds('clean'));
    const metrics = JSON.parse(fs.readFileSync(path.join(dir, 'bad/out/metrics.json'), 'utf8'));
    assert.is(metrics.scored_images, 2);
    assert.equal(metrics.skipped_images.map((s: { file: string }) => path.basename(s.file)), ['e.png', 'b.png']);
  } finally {
    net.dispose?.();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('the detect command exits 1 when it skipped images, after running the good ones', () => {
  const { dir, bad } = folders();
  try {
    const out = path.join(dir, 'out');
    const p = spawnSync(process.execPath, ['--import', 'tsx', path.join(root, 'src/cli/main.ts'), 'detect', '--cfg', MINI, '--source', bad, '--out', out, '--conf', String(CONF)], { cwd: root, encoding: 'utf8', timeout: 120_000 });
    assert.is(p.status, 1, `${p.stdout}\n${p.stderr}`);
    assert.ok(p.stdout.includes(`warning: skipped ${path.join(bad, 'bad.png')}: not a PNG or JPEG file`), p.stdout);
    assert.ok(p.stdout.includes('detect: 3 images, 3 skipped (see warnings above)'), p.stdout);
    assert.equal(fs.readdirSync(out).filter((f) => f.endsWith('.json')).sort(), ['a.json', 'b.json', 'c.json']);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
