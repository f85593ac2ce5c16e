// The training side of examples/browser/train.html: the engine, the model and trainOnFiles of the library's
// browser bundle, driven by messages. train-worker.js runs it in a module Worker (off the page's main thread,
// where the browser offers WebGPU to workers); the page runs it in its own thread otherwise. Checkpoints go
// to IndexedDB (database yolo-wgsl-train: `current`, the last pair with the run's settings and losses;
// `best`), so that a reloaded page resumes the run exactly where it was saved.
//
// in:  {type: 'check', bundle, cfg, cfgName, size, seed, valFraction, files}  -> 'checked' {dataset, problems, summary}
//      {type: 'start', ...check's fields, weights, iterations, batch, lr, augment, saveEvery}
//          -> 'checked', 'started', 'progress' {p}, 'epoch' {e}, 'saved' {name, iteration}, 'log', 'done' {report}
//      {type: 'saved-run?'} -> 'saved-run' {run: the saved run's settings and iteration, or null}
//      {type: 'resume-run', bundle, files} -> 'history' {losses, val, iteration}, then as 'start'
//      {type: 'pause'} -> 'paused';  {type: 'resume'};  {type: 'stop'};  {type: 'weights'} -> 'weights' {bytes, iteration}
//      {type: 'best'} -> 'weights' {bytes, iteration, best: true} (IndexedDB's `best`)
// Any failure answers 'error' {name, message}.
const DB = 'yolo-wgsl-train';

function openDb() {
  return new Promise((ok, ko) => {
    const r = indexedDB.open(DB, 1);
    r.onupgradeneeded = () => r.result.createObjectStore('runs');
    r.onsuccess = () => ok(r.result);
    r.onerror = () => ko(r.error);
  });
}
async function store(mode, fn) {
  const db = await openDb();
  try {
    return await new Promise((ok, ko) => {
      const t = db.transaction('runs', mode);
      const req = fn(t.objectStore('runs'));
      t.oncomplete = () => ok(req?.result);
      t.onerror = () => ko(t.error);
      t.onabort = () => ko(t.error ?? new Error('IndexedDB transaction aborted'));
    });
  } finally {
    db.close();
  }
}
const dbGet = (key) => store('readonly', (s) => s.get(key));
const dbPut = (key, value) => store('readwrite', (s) => s.put(value, key));
const dbClear = () => store('readwrite', (s) => s.clear());

export function trainer(post) {
  let yolo, engine, model, run, files = new Map(), iteration = 0;
  const fail = (e) => post({ type: 'error', name: e?.name ?? 'Error', message: e?.message ?? String(e) });

  async function load(m) {
    yolo ??= await import(m.bundle);
    if (!engine) {
      engine = await yolo.createEngine();
      post({ type: 'adapter', adapter: engine.adapterInfo.summary });
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
    const problems = [...new Set([...ds.train.problems, ...(ds.val?.problems ?? [])].map(yolo.formatProblem))];
    return { dataset: { split: ds.split, train: ds.train.images.length, val: ds.val?.images.length ?? 0, names: ds.names }, problems, summary: `${files.size} files, ${nc} classes (the cfg's)\n${ds.summary.join('\n')}` };
  }

  /** Trains with the run's settings `s` (from 'start', or the saved run's), from `resume` when given. */
  async function train(s, resume, history) {
    const losses = [...(history?.losses ?? [])];
    iteration = resume?.iteration ?? 0;
    const settings = { cfg: s.cfg, cfgName: s.cfgName, size: s.size, seed: s.seed, valFraction: s.valFraction, iterations: s.iterations, batch: s.batch, lr: s.lr, augment: s.augment, saveEvery: s.saveEvery, fileCount: files.size };
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
        describe: (name) => `IndexedDB ${DB}/${name === 'last' ? 'current' : name}`,
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

  return async function handle(m) {
    try {
      if (m.type === 'check') {
        await load(m);
        post({ type: 'checked', ...check(m) });
      } else if (m.type === 'start') {
        await load(m);
        post({ type: 'checked', ...check(m) });
        await dbClear(); // a new run: the saved one (and its best) is gone
        await train(m);
      } else if (m.type === 'saved-run?') {
        const r = await dbGet('current');
        const b = await dbGet('best');
        post({ type: 'saved-run', run: r ? { ...r, weights: undefined, state: undefined } : null, best: b?.iteration ?? null });
      } else if (m.type === 'resume-run') {
        const r = await dbGet('current');
        if (!r) throw new Error('no saved run in this browser');
        await load({ ...r, bundle: m.bundle, files: m.files });
        if (files.size !== r.fileCount) post({ type: 'log', line: `warning: the saved run had ${r.fileCount} files, these are ${files.size}: pick the same folder to continue it exactly` });
        post({ type: 'checked', ...check(r) });
        // val points from the checkpoint's epoch history (the state holds each epoch's metrics)
        const val = (r.state.history ?? []).filter((h) => h.metrics).map((h) => ({ epoch: h.epoch, iteration: h.iteration, map50: h.metrics.map50, map50_95: h.metrics.map50_95 }));
        post({ type: 'history', losses: r.losses, val, iteration: r.iteration });
        await train(r, r, { losses: r.losses });
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
