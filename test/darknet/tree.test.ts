/**
 * The class-hierarchy files of YOLO9000 cfgs (src/darknet/tree.ts): tree and map parsing with file:line
 * errors, where tree= / map= paths resolve (the working directory as Darknet, then the cfg's folder), a
 * missing file (a warning; the network builds; detection and training refuse at the key's line), and the
 * classifier target (fill_hierarchy). No GPU.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { noteMissingShared, sharedDir } from '../helpers/check.js';
import { CfgError, parseCfg } from '../../src/darknet/cfg.js';
import { Network } from '../../src/darknet/network.js';
import { hierarchyProbability, hierarchyTarget, parseClassMap, parseTree, TreeFileError } from '../../src/darknet/tree.js';
import { headFromLayer, isHeadLayer } from '../../src/yolo/heads.js';
import { packageRoot } from '../../src/util/paths.js';

const small = parseTree(fs.readFileSync(path.join(packageRoot(), 'fixtures/tree/small.tree'), 'utf8'), 'small.tree');

function treeError(text: string): TreeFileError {
  try {
    parseTree(text, 't.tree');
  } catch (e) {
    assert.instance(e, TreeFileError);
    return e as TreeFileError;
  }
  throw new Error('expected a TreeFileError');
}

test('tree files: malformed lines are errors naming the line', () => {
  let e = treeError('a -1\nb -1\nc\n');
  assert.is(e.line, 3);
  assert.match(e.message, /^t\.tree:3: expected "name parent_index", got 'c'/);
  e = treeError('a -1\nb 0\nc 5\n');
  assert.is(e.line, 3);
  assert.match(e.message, /parent index 5 is not an earlier line/);
  assert.is(treeError('a -1\n\nb 0\n').line, 2);
  assert.match(treeError('a -2\n').message, /t\.tree:1: parent index -2 \(a root is -1\)/);
  assert.match(treeError('a -1 x\n').message, /t\.tree:1: expected/);
  assert.match(treeError('').message, /t\.tree:1: empty tree file/);
  // CRLF line ends and a final newline are fine
  assert.is(parseTree('a -1\r\nb -1\r\nc 0\r\n', 't').n, 3);
});

test("tree files: read_tree's groups (consecutive lines with one parent), children, leaves", () => {
  assert.equal([...small.groupOffset], [0, 3, 5, 8, 10, 11]);
  assert.equal([...small.groupSize], [3, 2, 3, 2, 1, 2]);
  // siblings split by another parent: two groups, child[] names the last (as Darknet's read_tree)
  const t = parseTree('a -1\nb -1\nc 0\nd 1\ne 0\n', 's');
  assert.equal([...t.group], [0, 0, 1, 2, 3]);
  assert.equal([...t.child], [3, 2, -1, -1, -1]);
  assert.equal([...t.leaf], [0, 0, 1, 1, 1]);
  assert.is(hierarchyProbability([0.5, 0.5, 0.25, 1, 1], t, 2), 0.125);
});

test('hierarchyTarget: fill_hierarchy (1 on the label and its ancestors, NaN on the groups off the path)', () => {
  const y = hierarchyTarget(small, 8); // terrier < dog < animal
  const show = [...y].map((v) => (Number.isNaN(v) ? 'm' : v));
  assert.equal(show, [1, 0, 0, 1, 0, 'm', 'm', 'm', 1, 0, 'm', 'm', 'm']);
  assert.throws(() => hierarchyTarget(small, 13), /outside the tree's 13 classes/);
});

test('map files: one class index per line, within the classes', () => {
  assert.equal([...parseClassMap('3\n5\n9\n', 'm', 13)], [3, 5, 9]);
  assert.throws(() => parseClassMap('3\nx\n', 'm.map', 13), /^Error: m\.map:2: expected a class index, got 'x'|m\.map:2: expected a class index/);
  assert.throws(() => parseClassMap('3\n13\n', 'm.map', 13), /m\.map:2: class index 13 is outside the 13 classes/);
});

const REGION = (tree: string, extra = '') => `[net]\nwidth=2\nheight=2\nchannels=18\n\n[region]\nanchors=1,1\nclasses=13\ncoords=4\nnum=1\nsoftmax=1\ntree=${tree}\n${extra}`;

function tmp(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'yolo-wgsl-tree-'));
}

test('tree= / map= in a cfg: found beside the cfg; malformed files are CfgErrors at the key naming the file line', () => {
  const dir = tmp();
  try {
    const cfgFile = path.join(dir, 'sub', 'x.cfg');
    fs.mkdirSync(path.dirname(cfgFile));
    fs.copyFileSync(path.join(packageRoot(), 'fixtures/tree/small.tree'), path.join(dir, 'sub', 'small.tree'));
    const net = Network.build(parseCfg(REGION('small.tree'), cfgFile));
    assert.equal(net.warnings, []);
    const l = net.layers[0];
    assert.ok(l.kind === 'region' && l.options.tree?.ok && l.options.tree.value.n === 13);
    fs.writeFileSync(path.join(dir, 'sub', 'bad.tree'), 'a -1\nb -1\nc 7\n');
    let err: CfgError | undefined;
    try {
      Network.build(parseCfg(REGION('bad.tree'), cfgFile));
    } catch (e) {
      err = e as CfgError;
    }
    assert.instance(err, CfgError);
    assert.is(err!.line, 12);
    assert.is(err!.key, 'tree');
    assert.match(err!.message, new RegExp(`^${cfgFile.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:12: \\[region\\] key 'tree': tree file .*bad\\.tree:3: parent index 7 is not an earlier line`));
    // a tree of the wrong size
    fs.writeFileSync(path.join(dir, 'sub', 'three.tree'), 'a -1\nb -1\nc 0\n');
    assert.throws(() => Network.build(parseCfg(REGION('three.tree'), cfgFile)), /x\.cfg:12: \[region\] key 'tree': the tree file .*three\.tree has 3 classes, classes=13/);
    fs.writeFileSync(path.join(dir, 'sub', 'bad.map'), '1\n99\n');
    assert.throws(() => Network.build(parseCfg(REGION('small.tree', 'map=bad.map\n'), cfgFile)), /x\.cfg:13: \[region\] key 'map': class map file .*bad\.map:2: class index 99 is outside the 13 classes/);
    // Darknet opens the path relative to the working directory: that one wins over the cfg's folder
    const cwd = process.cwd();
    fs.writeFileSync(path.join(dir, 'small.tree'), 'a -1\nb -1\nc 0\n');
    process.chdir(dir);
    try {
      assert.throws(() => Network.build(parseCfg(REGION('small.tree'), cfgFile)), /tree file .*[/\\]small\.tree has 3 classes/);
    } finally {
      process.chdir(cwd);
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('a missing tree file: one warning, the network builds; detection and training refuse at the key', () => {
  const net = Network.build(parseCfg(REGION('data/9k.tree', 'map=data/coco9k.map\n'), '/nowhere/y9k.cfg'));
  const w = net.warnings.map((x) => `${x.file}:${x.line}: ${x.message}`);
  assert.is(w.length, 2, w.join('\n'));
  assert.match(w[0], /^\/nowhere\/y9k\.cfg:12: \[region\] the tree file 'data\/9k\.tree' was not found \(looked for .*data\/9k\.tree and \/nowhere\/data\/9k\.tree\): the network builds \(shapes do not depend on it\), forward, detect and train need it$/);
  assert.match(w[1], /^\/nowhere\/y9k\.cfg:13: \[region\] the class map file 'data\/coco9k\.map' was not found .*: the network builds \(shapes do not depend on it\), training needs it$/);
  const head = net.layers.filter(isHeadLayer)[0];
  assert.throws(() => headFromLayer(head), (e: unknown) => e instanceof CfgError && e.line === 12 && /^\/nowhere\/y9k\.cfg:12: \[region\] key 'tree': the tree file 'data\/9k\.tree' was not found .*; detection needs it$/.test(e.message));
});

test('yolo9000.cfg and darknet9000.cfg build without data/9k.tree, saying so in one warning line per file', () => {
  const shared = sharedDir();
  if (!shared) return noteMissingShared('the cfg corpus');
  for (const [f, n] of [['yolo9000.cfg', 2], ['darknet9000.cfg', 1]] as const) {
    const net = Network.fromFile(path.join(shared, 'darknet-cfg', f));
    const w = net.warnings.filter((x) => /was not found/.test(x.message));
    assert.is(w.length, n, `${f}: ${w.map((x) => x.message).join(' | ')}`);
    assert.match(w[0].message, /the tree file 'data\/9k\.tree' was not found/);
    const last = net.layers.find((l) => l.kind === 'region' || l.kind === 'softmax')!;
    assert.is(last.output.c * last.output.h * last.output.w, f === 'yolo9000.cfg' ? 17 * 17 * 3 * 9423 : 9418);
  }
});

test.run();
