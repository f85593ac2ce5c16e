// The training side of examples/browser/train.html: the engine, the model and trainOnFiles of the library's
// browser bundle, driven by messages. train-worker.js runs it in a module Worker (off the page's main thread,
// where the browser offers WebGPU to workers); the page runs it in its own thread otherwise. Checkpoints go
// to IndexedDB and the dataset to OPFS (train-store.js), so that a reloaded page resumes the run exactly
// where it was saved, without the folder being picked again.
//
// in:  {type: 'check', bundle, cfg, cfgName, size, seed, valFraction, files, adapter}  -> 'checked' {dataset, problems, summary}
//      {type: 'start', ...check's fields, weights, iterations, batch, lr, augment, saveEvery, storage}
//          -> 'checked', 'stored' {ok, where | why}, 'started', 'progress' {p}, 'epoch' {e}, 'saved' {name, iteration}, 'log', 'done' {report}
//      {type: 'saved-run?'} -> 'saved-run' {run: the saved run's settings, iteration and stored dataset, or null; best; stored}
//      {type: 'resume-run', bundle, files?, adapter} -> 'history' {losses, val, iteration}, then as 'start' (the stored
//          dataset when no files are given)
//      {type: 'forget'} -> 'forgotten' (the saved run, its best and the stored dataset removed)
//      {type: 'pause'} -> 'paused';  {type: 'resume'};  {type: 'stop'};  {type: 'weights'} -> 'weights' {bytes, iteration}
//      {type: 'best'} -> 'weights' {bytes, iteration, best: true} (IndexedDB's `best`)
// Any failure answers 'error' {name, message, problems?} (problems: a conversion's messages when it wrote nothing).
import { dbClearRun, dbGet, dbPut, forgetDataset, loadDataset, storeDataset, storedDataset } from './train-store.js';

/**
 * The engine on the page's WebGPU. adapter 'compat': the adapter of the compatibility feature level (e.g.
 * Chromium's OpenGL ES backend, over ANGLE: on a machine without a GPU, Mesa's lavapipe with
 * --use-webgpu-adapter=opengles); else the default one.
 */
export async function makeEngine(yolo, adapter) {
  if (adapter !== 'compat') return yolo.createEngine();
  return new yolo.Engine(await yolo.Gpu.create({ featureLevel: 'compatibility' }));
}

export function trainer(post) {
  let yolo, engine, model, run, files = new Map(), iteration = 0;
  const fail = (e) => post({ type: 'error', name: e?.name ?? 'Error', message: e?.message ?? String(e), problems: yolo && e?.issues?.map((i) => yolo.formatIssue(i)) });

  async function load(m) {
    yolo ??= await import(m.bundle);
    if (!engine) {
      engine = await makeEngine(yolo, m.adapter);
      post({ type: 'adapter', adapter: engine.adapterInfo.summary, description: engine.adapterInfo.description });
    }
    model?.dispose();
    model = undefined;
    model = await yolo.loadDarknet({ engine, cfg: m.cfg, cfgName: m.cfgName, weights: m.weights, width: m.size, height: m.size, seed: (m.seed ?? 0) + 1 });
    if (m.files) files = m.files;
    return model;
  }

  function check(m) {
    const nc = model.info().classes; // the cfg's classes bound the labels' class ids
    const ds = yolo.memoryDataset(files, { nc, valFraction: m.valFraction, seed: m.seed, log: () => {} });
    // the converter's messages (COCO / VOC / labelme: file, line or JSON path), then the dataset's, then the label lines'
    const problems = [...(ds.conversion?.issues.map(yolo.formatIssue) ?? []), ...ds.warnings, ...new Set([...ds.train.problems, ...(ds.val?.problems ?? [])].map(yolo.formatProblem))];
    const dataset = { split: ds.split, train: ds.train.images.length, val: ds.val?.images.length ?? 0, names: ds.names, format: ds.format, what: ds.conversion?.what ?? null };
    // (a conversion's own line is the page's format line)
    return { dataset, problems, summary: `${files.size} files, ${nc} classes (the cfg's)\n${ds.summary.slice(ds.conversion ? 1 : 0).join('\n')}` };
  }

  /** Trains with the run's settings `s` (from 'start', or the saved run's), from `resume` when given. */
  async function train(s, resume, history, dataset) {
    const losses = [...(history?.losses ?? [])];
    iteration = resume?.iteration ?? 0;
    const settings = { cfg: s.cfg, cfgName: s.cfgName, size: s.size, seed: s.seed, valFraction: s.valFraction, iterations: s.iterations, batch: s.batch, lr: s.lr, augment: s.augment, saveEvery: s.saveEvery, fileCount: files.size, dataset, storage: s.storage };
    run = yolo.trainOnFiles({
      model, files, maxBatches: s.iterations, batch: s.batch, subdivisions: s.batch ? 1 : undefined, lr: s.lr, seed: s.seed ?? 0,
      augment: s.augment, valFraction: s.valFraction, saveEvery: s.saveEvery,
      resume: resume ? { weights: resume.weights, state: resume.state } : undefined,
      checkpoint: {
        save: async (name, weights, state, it) => {
          if (name === 'last') await dbPut('current', { ...settings, iteration: it, weights, state, losses: losses.filter((l) => l.iteration <= it), done: false, savedAt: Date.now() });
          else await dbPut('best', { weights, iteration: it, cfgName: s.cfgName });
          post({ type: 'saved', name, iteration: it });
        },
        final: async () => {
          const cur = await dbGet('current');
          if (cur) await dbPut('current', { ...cur, done: true });
        },
        describe: (name) => `IndexedDB yolo-wgsl-train/${name === 'last' ? 'current' : name}`,
      },
      log: (line) => post({ type: 'log', line }),
      onProgress: (p) => {
        iteration = p.iteration;
        losses.push({ iteration: p.iteration, loss: p.loss });
        post({ type: 'progress', p });
      },
      onEpochEnd: (e) => post({ type: 'epoch', e }),
    });
    post({ type: 'started', from: resume?.iteration ?? 0 });
    const r = await run.done;
    post({ type: 'done', report: { stopped: r.stopped, iterations: r.iterations, epochs: r.epochs, images: r.images, loss: r.loss, best: r.best } });
  }

  /** Stores the files as the run's dataset; says how it went ('stored'); the record for `current`, or null. */
  async function keepDataset(storage) {
    const t = performance.now();
    const r = await storeDataset(files, storage);
    post({ type: 'stored', ...r, ms: performance.now() - t });
    return r.ok ? { where: r.where, files: r.files, bytes: r.bytes } : null;
  }

  return async function handle(m) {
    try {
      if (m.type === 'check') {
        await load(m);
        post({ type: 'checked', ...check(m) });
      } else if (m.type === 'start') {
        await load(m);
        post({ type: 'checked', ...check(m) });
        await dbClearRun(); // a new run: the saved one (and its best) is gone
        const dataset = await keepDataset(m.storage);
        await train(m, undefined, undefined, dataset);
      } else if (m.type === 'saved-run?') {
        const r = await dbGet('current');
        const b = await dbGet('best');
        const stored = await storedDataset();
        const has = r?.dataset && (r.dataset.where === 'opfs' ? stored.opfs !== null : stored.indexeddb !== null);
        post({ type: 'saved-run', run: r ? { ...r, weights: undefined, state: undefined, datasetStored: !!has } : null, best: b?.iteration ?? null, stored });
      } else if (m.type === 'resume-run') {
        const r = await dbGet('current');
        if (!r) throw new Error('no saved run in this browser');
        let dataset = r.dataset;
        let picked = m.files?.size ? m.files : null;
        if (!picked) {
          const got = r.dataset ? await loadDataset(r.dataset.where) : null;
          if (!got) throw new Error('the dataset of the saved run is not stored in this browser: pick the same folder again, then Resume saved run');
          if (got.size !== r.dataset.files) throw new Error(`the stored dataset has ${got.size} files, the run saved ${r.dataset.files}: pick the same folder again`);
          post({ type: 'log', line: `the saved run's dataset: ${got.size} files from ${r.dataset.where === 'opfs' ? 'OPFS' : 'IndexedDB'}` });
          picked = got;
        }
        await load({ ...r, bundle: m.bundle, adapter: m.adapter, files: picked });
        if (files.size !== r.fileCount) post({ type: 'log', line: `warning: the saved run had ${r.fileCount} files, these are ${files.size}: pick the same folder to continue it exactly` });
        post({ type: 'checked', ...check(r) });
        if (m.files?.size) dataset = await keepDataset(r.storage); // picked again: stored again
        // val points from the checkpoint's epoch history (the state holds each epoch's metrics)
        const val = (r.state.history ?? []).filter((h) => h.metrics).map((h) => ({ epoch: h.epoch, iteration: h.iteration, map50: h.metrics.map50, map50_95: h.metrics.map50_95 }));
        post({ type: 'history', losses: r.losses, val, iteration: r.iteration });
        await train(r, r, { losses: r.losses }, dataset);
      } else if (m.type === 'forget') {
        await dbClearRun();
        await forgetDataset();
        post({ type: 'forgotten', stored: await storedDataset() });
      } else if (m.type === 'pause') {
        await run?.pause();
        post({ type: 'paused' });
      } else if (m.type === 'resume') {
        run?.resume();
      } else if (m.type === 'stop') {
        run?.stop();
      } else if (m.type === 'best') {
        const b = await dbGet('best');
        if (!b) throw new Error('no best weights saved yet (they are saved when val improves)');
        post({ type: 'weights', bytes: b.weights, iteration: b.iteration, best: true });
      } else if (m.type === 'weights') {
        const bytes = run ? await run.weights() : model.toWeights();
        post({ type: 'weights', bytes, iteration }, [bytes.buffer]);
      }
    } catch (e) {
      fail(e);
    }
  };
}
