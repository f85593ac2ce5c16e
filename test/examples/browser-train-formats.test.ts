/**
 * Training in the browser on exports of other formats, and the storage's limits: examples/browser/train.html on
 * headless Chromium (SwiftShader) takes
 * - a COCO export of a generated dataset (Roboflow's layout: train/ and valid/ each with its images and
 *   _annotations.coco.json; two bad annotations added): it finds the format, converts it as `convert` does,
 *   lists the converter's own messages (file: JSON path: why), takes the class names from the categories,
 *   keeps the dataset in IndexedDB (?storage=indexeddb: the fallback where OPFS is missing), trains, is
 *   reloaded after a checkpoint and resumes without the folder;
 * - a Pascal VOC export of the same images (Annotations/*.xml with one malformed, JPEGImages/, ImageSets/Main/):
 *   the XML's line and column listed, trains;
 * - a folder larger than a storage quota set through the DevTools protocol (Storage.overrideQuotaForOrigin):
 *   the dataset is not stored and the page says so, the run still trains and checkpoints, and after a reload
 *   the saved run asks for the folder;
 * - and, where the checkout has Mesa (scripts/setup-mesa.sh), Chromium's other CPU adapter: WebGPU on ANGLE on
 *   Vulkan lavapipe (?adapter=compat, the compatibility feature level): two updates with Node's losses.
 * The COCO problem list is photographed for docs/browser.md. Skipped, saying why, where no Chromium can be had.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { getGpu } from '../helpers/gpu.js';
import { Engine, loadDarknet } from '../../src/index.js';
import { trainOnFiles } from '../../src/api/train_files.js';
import { generateSynth } from '../../src/data/synth.js';
import { yoloToCoco } from '../../src/data/convert/convert.js';
import { readImageSize } from '../../src/data/dataset.js';
import { packageRoot } from '../../src/util/paths.js';
import { findChromium, lavapipeIcd, launchChromium, screenshot, serveCheckout } from '../helpers/browser.js';
import { readTree } from '../helpers/files.js';

const root = packageRoot();
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'yw-browser-formats-'));
const bundle = path.join(tmp, 'yolo-wgsl.js');

type TrainPage = {
  ready: boolean; phase: string; error: string | null; problems: string[]; files: number; adapter: string | null;
  dataset: { split: string; train: number; val: number; names: string[]; format: string; what: string | null } | null;
  losses: { iteration: number; loss: number }[]; saved: number | null; resumedFrom: number | null;
  savedRun: { iteration: number; done: boolean; datasetStored: boolean; dataset: { where: string; files: number } | null } | null;
  stored: { ok: boolean; where?: string; files?: number; why?: string; quota?: boolean } | null;
  report: { stopped: string; iterations: number } | null;
};

/** A Roboflow-style COCO export of a YOLO dataset: <out>/{train,valid}/ with the images and _annotations.coco.json. */
function cocoExport(yaml: string, out: string): void {
  for (const f of yoloToCoco({ data: yaml, out: path.join(tmp, 'coco-json') }).files) {
    const dir = path.join(out, f.split === 'val' ? 'valid' : f.split);
    fs.cpSync(f.imagesDir, dir, { recursive: true });
    fs.copyFileSync(f.file, path.join(dir, '_annotations.coco.json'));
  }
}

/** A Pascal VOC tree of a YOLO dataset (1-based corners, as Darknet's voc_label.py reads them back). */
function vocExport(synthDir: string, names: string[], out: string): void {
  for (const sub of ['Annotations', 'JPEGImages', 'ImageSets/Main']) fs.mkdirSync(path.join(out, sub), { recursive: true });
  for (const split of ['train', 'val']) {
    const ids: string[] = [];
    for (const f of fs.readdirSync(path.join(synthDir, 'images', split)).sort()) {
      const id = `${split}_${path.basename(f, '.png')}`;
      ids.push(id);
      const img = path.join(synthDir, 'images', split, f);
      fs.copyFileSync(img, path.join(out, 'JPEGImages', `${id}.png`));
      const { width: W, height: H } = readImageSize(img);
      const lines = fs.readFileSync(path.join(synthDir, 'labels', split, f.replace(/\.png$/, '.txt')), 'utf8').split('\n').filter(Boolean);
      const objects = lines.map((l) => {
        const [c, cx, cy, w, h] = l.split(' ').map(Number);
        const r = (v: number) => (v + 1).toFixed(3);
        return `  <object>\n    <name>${names[c]}</name>\n    <difficult>0</difficult>\n    <bndbox><xmin>${r((cx - w / 2) * W)}</xmin><ymin>${r((cy - h / 2) * H)}</ymin><xmax>${r((cx + w / 2) * W)}</xmax><ymax>${r((cy + h / 2) * H)}</ymax></bndbox>\n  </object>`;
      });
      fs.writeFileSync(path.join(out, 'Annotations', `${id}.xml`), `<annotation>\n  <filename>${id}.png</filename>\n  <size><width>${W}</width><height>${H}</height><depth>3</depth></size>\n${objects.join('\n')}\n</annotation>\n`);
    }
    fs.writeFileSync(path.join(out, 'ImageSets/Main', `${split}.txt`), `${ids.join('\n')}\n`);
  }
}

test('train.html: a COCO export (IndexedDB, reload, resume without the folder), a VOC export, and a folder over the storage quota', async () => {
  const { exe, why } = await findChromium();
  if (!exe) {
    console.log(`  [skipped: browser training on COCO / VOC: ${why}; set YOLO_WGSL_CHROMIUM to use another Chromium or Chrome]`);
    return;
  }
  const { buildBrowser } = (await import(path.join(root, 'scripts/build-browser.mjs'))) as { buildBrowser: (o: { outfile: string; minify?: boolean }) => Promise<unknown> };
  await buildBrowser({ outfile: bundle, minify: false });
  const synth = generateSynth({ out: path.join(tmp, 'shapes'), trainCount: 16, valCount: 4, size: 64, seed: 3 });
  const names = fs.readFileSync(synth.names, 'utf8').trim().split('\n');
  // COCO, with an annotation of an unknown category and a zero-size box
  const coco = path.join(tmp, 'shapes-coco');
  cocoExport(synth.yaml, coco);
  const trainJson = path.join(coco, 'train/_annotations.coco.json');
  const doc = JSON.parse(fs.readFileSync(trainJson, 'utf8'));
  const n = doc.annotations.length;
  doc.annotations.push({ id: 900, image_id: 1, category_id: 9, bbox: [4, 4, 10, 10], area: 100, iscrowd: 0 }, { id: 901, image_id: 2, category_id: 0, bbox: [5, 5, 0, 8], area: 0, iscrowd: 0 });
  fs.writeFileSync(trainJson, JSON.stringify(doc, null, 1));
  // VOC, with one XML cut short
  const voc = path.join(tmp, 'shapes-voc');
  vocExport(synth.out, names, voc);
  const broken = path.join(voc, 'Annotations/train_000003.xml');
  fs.writeFileSync(broken, fs.readFileSync(broken, 'utf8').replace('</bndbox>', ''));
  // YOLO, plus 6 MB that no quota of 5 MB holds
  const big = path.join(tmp, 'shapes-big');
  fs.cpSync(synth.out, big, { recursive: true });
  fs.mkdirSync(path.join(big, 'notes'));
  fs.writeFileSync(path.join(big, 'notes/recording.bin'), new Uint8Array(6 * 2 ** 20).fill(7));

  const cfgFile = path.join(tmp, 'mini.cfg');
  fs.writeFileSync(cfgFile, fs.readFileSync(path.join(root, 'fixtures/cfg/yolo-mini.cfg'), 'utf8').replace('burn_in=100', 'burn_in=0'));
  const { server, port } = await serveCheckout({ '/bundle.js': bundle, '/bundle.js.map': `${bundle}.map`, '/mini.cfg': cfgFile });
  const browser = await launchChromium(exe);
  const logs: string[] = [];
  try {
    const open = async (ctx: import('playwright-core').BrowserContext, params: Record<string, string>) => {
      const tab = await ctx.newPage();
      tab.on('console', (m) => logs.push(`${m.type()}: ${m.text()}`));
      tab.on('pageerror', (e) => logs.push(`pageerror: ${e.message}`));
      const q = new URLSearchParams({ bundle: '/bundle.js', cfg: '/mini.cfg', size: '64', batch: '4', seed: '4', ...params });
      await tab.goto(`http://127.0.0.1:${port}/examples/browser/train.html?${q}`);
      await ready(tab);
      return tab;
    };
    const ready = (tab: import('playwright-core').Page) => tab.waitForFunction(() => { const s = (window as unknown as { __train?: TrainPage }).__train; return s?.ready === true || s?.error != null; }, null, { timeout: 120_000 });
    const state = (tab: import('playwright-core').Page) => tab.evaluate(() => (window as unknown as { __train: TrainPage }).__train) as Promise<TrainPage>;
    const until = (tab: import('playwright-core').Page, fn: string, timeout = 240_000) => tab.waitForFunction(`(() => { const s = window.__train; return s.error !== null || (${fn}); })()`, null, { timeout });
    const noError = (s: TrainPage) => assert.is(s.error, null, `page error: ${s.error}\n${logs.join('\n')}`);

    // ---- COCO, the dataset in IndexedDB
    const ctx = await browser.newContext({ viewport: { width: 1200, height: 820 } });
    let tab = await open(ctx, { iterations: '4', save: '2', storage: 'indexeddb' });
    await tab.setInputFiles('#folder', coco);
    await until(tab, 's.dataset !== null');
    let s = await state(tab);
    noError(s);
    const json = 'shapes-coco/train/_annotations.coco.json';
    assert.equal(s.dataset && [s.dataset.format, s.dataset.split, s.dataset.train, s.dataset.val, s.dataset.names], ['coco', 'converted', 16, 4, names], 'a COCO export: the categories name the classes');
    assert.is(s.dataset!.what, `COCO instances JSON ${json} (images in shapes-coco/train/, train), shapes-coco/valid/_annotations.coco.json (images in shapes-coco/valid/, val)`);
    assert.ok(s.problems.includes(`warning: ${json}: annotations[${n}] (id 900): category_id 9 is in no category; skipped`), `problems: ${JSON.stringify(s.problems)}`);
    assert.ok(s.problems.includes(`warning: ${json}: annotations[${n + 1}] (id 901): zero-size box [5, 5, 5, 13] (w 0, h 8 px); skipped`), `problems: ${JSON.stringify(s.problems)}`);
    assert.match(await tab.locator('#format').innerText(), /^COCO: COCO instances JSON .*converted as yolo-wgsl convert does; classes from the annotations: circle, square, triangle$/);
    await screenshot(tab, 'browser-train-coco.png', tmp, 'main > div > section:first-child');
    await tab.click('#start');
    await until(tab, '(s.saved ?? 0) >= 2');
    s = await state(tab);
    noError(s);
    assert.equal(s.stored && [s.stored.ok, s.stored.where], [true, 'indexeddb'], `stored: ${JSON.stringify(s.stored)}`);
    const before = s.losses;
    await tab.reload();
    await ready(tab);
    s = await state(tab);
    noError(s);
    const savedAt = s.savedRun?.iteration ?? -1;
    assert.ok(s.savedRun && !s.savedRun.done && s.savedRun.datasetStored && s.savedRun.dataset?.where === 'indexeddb' && savedAt >= 2 && savedAt < 4, `saved: ${JSON.stringify(s.savedRun)}`);
    await tab.click('#resume-run');
    await until(tab, "s.phase === 'done' || s.phase === 'stopped'");
    s = await state(tab);
    noError(s);
    assert.equal([s.resumedFrom, s.report?.iterations, s.dataset?.format], [savedAt, 4, 'coco']);
    assert.equal(s.losses.slice(0, savedAt), before.slice(0, savedAt), 'the losses up to the checkpoint');
    assert.ok(s.losses.length === 4 && s.losses.every((l) => Number.isFinite(l.loss)), `losses ${JSON.stringify(s.losses)}`);
    console.log(`  [COCO export: ${s.dataset!.train} + ${s.dataset!.val} images, ${s.problems.length} problems listed; dataset in IndexedDB; reloaded at ${before.length}, resumed from ${savedAt} without the folder; losses ${s.losses.map((l) => l.loss.toFixed(1)).join(', ')}]`);

    // ---- VOC, in the same tab
    await tab.setInputFiles('#folder', voc);
    await until(tab, "s.dataset !== null && s.dataset.format === 'voc'", 60_000);
    s = await state(tab);
    noError(s);
    assert.equal([s.dataset!.split, s.dataset!.train, s.dataset!.val, s.dataset!.names], ['converted', 15, 4, names]);
    assert.ok(s.problems.some((p) => /^warning: shapes-voc\/Annotations\/train_000003\.xml:\d+:\d+: not well-formed XML: .*; skipped$/.test(p)), `problems: ${JSON.stringify(s.problems)}`);
    await tab.fill('#iterations', '2');
    await tab.click('#start');
    await until(tab, "s.phase === 'done' || s.phase === 'stopped'");
    s = await state(tab);
    noError(s);
    assert.ok(s.report?.iterations === 2 && s.losses.every((l) => Number.isFinite(l.loss)), `VOC trained: ${JSON.stringify(s.report)}`);
    console.log(`  [VOC export: ${s.dataset!.train} + ${s.dataset!.val} images (one XML malformed: listed with its line and column), 2 updates, losses ${s.losses.map((l) => l.loss.toFixed(1)).join(', ')}]`);
    await ctx.close();

    // ---- over the quota: not stored, said, still trains; after a reload the folder is asked for
    const qctx = await browser.newContext({ viewport: { width: 1200, height: 820 } });
    tab = await open(qctx, { iterations: '40', save: '1' });
    const cdp = await qctx.newCDPSession(tab); // the override lasts as long as this session
    await cdp.send('Storage.overrideQuotaForOrigin', { origin: `http://127.0.0.1:${port}`, quotaSize: 5 * 2 ** 20 });
    await tab.setInputFiles('#folder', big);
    await until(tab, 's.dataset !== null', 60_000);
    await tab.click('#start');
    await until(tab, '(s.saved ?? 0) >= 1');
    s = await state(tab);
    noError(s);
    assert.ok(s.stored && !s.stored.ok && s.stored.quota === true, `not stored, for the quota: ${JSON.stringify(s.stored)}`);
    const note = await tab.locator('#stored').innerText();
    assert.match(note, /^warning: the dataset \(6\.1 MB\) does not fit in this browser's storage quota for this page \(QuotaExceededError: .*\): not stored; the run trains, but after a reload the folder must be picked again to resume it$/);
    await tab.reload();
    await ready(tab);
    s = await state(tab);
    noError(s);
    assert.ok(s.savedRun && !s.savedRun.done && !s.savedRun.datasetStored && s.savedRun.dataset === null, `saved without its dataset: ${JSON.stringify(s.savedRun)}`);
    assert.match(await tab.locator('#status').innerText(), /: pick the same folder \(\d+ files\), then Resume saved run \(its dataset is not stored in this browser\)$/);
    assert.ok(await tab.locator('#resume-run').isDisabled(), 'Resume waits for the folder');
    console.log(`  [over a 5 MB quota: "${note}"; the run trained and checkpointed, the reloaded page asks for the folder]`);
    await qctx.close();

    // ---- Chromium on lavapipe: Dawn's OpenGL ES backend over ANGLE over Vulkan lavapipe (?adapter=compat)
    if (!lavapipeIcd()) console.log('  [Chromium on lavapipe not tried: no local Mesa (bash scripts/setup-mesa.sh)]');
    else {
      const lb = await launchChromium(exe, 'lavapipe');
      try {
        const lctx = await lb.newContext();
        tab = await open(lctx, { iterations: '2', adapter: 'compat' });
        await tab.setInputFiles('#folder', synth.out);
        await until(tab, 's.dataset !== null', 60_000);
        await tab.click('#start');
        await until(tab, "s.phase === 'done' || s.phase === 'stopped'");
        s = await state(tab);
        noError(s);
        assert.match(s.adapter ?? '', /llvmpipe/, `the page's adapter: ${s.adapter}`);
        assert.match(s.adapter ?? '', /compatibility feature level/, `the page's adapter says its level: ${s.adapter}`);
        const engine = new Engine(await getGpu());
        const model = await loadDarknet({ engine, cfg: fs.readFileSync(cfgFile, 'utf8'), width: 64, height: 64, seed: 5 });
        const files = readTree(synth.out, 'shapes');
        const losses: number[] = [];
        await trainOnFiles({ model, files, maxBatches: 2, batch: 4, subdivisions: 1, seed: 4, augment: true, valFraction: 0.1, onProgress: (p) => losses.push(p.loss) }).done;
        model.dispose();
        const rel = s.losses.map((l, k) => Math.abs(l.loss - losses[k]) / losses[k]);
        console.log(`  [Chromium on ${s.adapter}: 2 updates, losses ${s.losses.map((l) => l.loss.toFixed(3)).join(', ')}; Node (lavapipe) ${losses.map((l) => l.toFixed(3)).join(', ')}; relative differences ${rel.map((d) => d.toExponential(1)).join(', ')}]`);
        assert.ok(rel.length === 2 && rel.every((d) => d < 1e-4), `Node's losses within 1e-4: ${rel}`);
      } finally {
        await lb.close();
      }
    }
  } finally {
    await browser.close();
    server.close();
  }
});

test.after(() => fs.rmSync(tmp, { recursive: true, force: true }));
test.run();
