// Where examples/browser/train.html keeps a run across reloads: the checkpoints in IndexedDB (database
// yolo-wgsl-train, store `runs`: `current` = the last pair with the run's settings and losses, `best`), and
// the dataset the run trains on (the picked folder's files, as one packed file) in the origin private file
// system (OPFS: navigator.storage.getDirectory(), yolo-wgsl-train/dataset.bin), or in IndexedDB (`dataset`)
// where OPFS cannot be written. So a reloaded page resumes the saved run without the folder being picked again.
//
// The packed dataset: a 4-byte little-endian length n, n bytes of JSON {version: 1, files: [[name, size]...]},
// then every file's bytes in that order. A browser's storage has a quota: `storeDataset` checks the estimate
// first and turns a QuotaExceededError into a message that says so (the run then trains without it, and a
// reloaded page asks for the folder again).
const DB = 'yolo-wgsl-train';
const OPFS_DIR = 'yolo-wgsl-train';
const OPFS_FILE = 'dataset.bin';

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
export const dbGet = (key) => store('readonly', (s) => s.get(key));
export const dbPut = (key, value) => store('readwrite', (s) => s.put(value, key));
const dbDelete = (key) => store('readwrite', (s) => s.delete(key));
/** Forgets the saved run's checkpoints (`current`, `best`); the stored dataset stays (forgetDataset). */
export async function dbClearRun() {
  await dbDelete('current');
  await dbDelete('best');
}

const mb = (n) => `${(n / 2 ** 20).toFixed(1)} MB`;
/** True when the error is the browser's storage quota (the name differs across browsers and APIs). */
const isQuota = (e) => e?.name === 'QuotaExceededError' || e?.code === 22 || /quota/i.test(e?.message ?? '');

/** OPFS where this context can write a file in it (createWritable: Chromium and Firefox, pages and workers). */
async function opfsDir(create) {
  if (!globalThis.navigator?.storage?.getDirectory || typeof FileSystemFileHandle === 'undefined' || !('createWritable' in FileSystemFileHandle.prototype)) return null;
  const root = await navigator.storage.getDirectory();
  try {
    return await root.getDirectoryHandle(OPFS_DIR, { create });
  } catch (e) {
    if (e?.name === 'NotFoundError') return null;
    throw e;
  }
}

function header(files) {
  const list = [...files].map(([name, bytes]) => [name, bytes.byteLength]);
  const json = new TextEncoder().encode(JSON.stringify({ version: 1, files: list }));
  const out = new Uint8Array(4 + json.length);
  new DataView(out.buffer).setUint32(0, json.length, true);
  out.set(json, 4);
  return out;
}

function unpack(buf) {
  const bytes = new Uint8Array(buf);
  const n = new DataView(bytes.buffer, bytes.byteOffset).getUint32(0, true);
  const h = JSON.parse(new TextDecoder().decode(bytes.subarray(4, 4 + n)));
  if (h.version !== 1) throw new Error(`stored dataset: unknown version ${h.version}`);
  const files = new Map();
  let at = 4 + n;
  for (const [name, size] of h.files) {
    if (at + size > bytes.length) throw new Error(`stored dataset: cut short at ${name}`);
    files.set(name, bytes.subarray(at, at + size));
    at += size;
  }
  return files;
}

/**
 * Stores the files (replacing a stored dataset). `prefer`: 'opfs' (default; IndexedDB where OPFS is missing)
 * or 'indexeddb'. Resolves { ok: true, where, files, bytes } or { ok: false, why } (a quota or other storage
 * failure, in words); never rejects.
 */
export async function storeDataset(files, prefer = 'opfs') {
  const size = [...files.values()].reduce((s, b) => s + b.byteLength, 0);
  const info = { files: files.size, bytes: size };
  try {
    await forgetDataset();
    const est = await navigator.storage?.estimate?.().catch(() => null);
    if (est?.quota && est.usage !== undefined && est.quota - est.usage < size + 64 * 1024) {
      return { ok: false, quota: true, why: `the dataset (${mb(size)}) does not fit in this browser's storage for this page (${mb(est.quota - est.usage)} free of a ${mb(est.quota)} quota): not stored` };
    }
    const dir = prefer === 'indexeddb' ? null : await opfsDir(true);
    if (dir) {
      const handle = await dir.getFileHandle(OPFS_FILE, { create: true });
      const w = await handle.createWritable();
      try {
        await w.write(header(files));
        for (const b of files.values()) await w.write(b);
        await w.close();
      } catch (e) {
        await w.abort().catch(() => {});
        await dir.removeEntry(OPFS_FILE).catch(() => {});
        throw e;
      }
      return { ok: true, where: 'opfs', ...info };
    }
    await dbPut('dataset', { version: 1, files });
    return { ok: true, where: 'indexeddb', ...info };
  } catch (e) {
    const what = `${e?.name ?? 'Error'}: ${e?.message ?? e}`;
    return isQuota(e)
      ? { ok: false, quota: true, why: `the dataset (${mb(size)}) does not fit in this browser's storage quota for this page (${what}): not stored` }
      : { ok: false, why: `the dataset could not be stored (${what})` };
  }
}

/** The stored dataset's files (as stored by `where`), or null when there is none. */
export async function loadDataset(where) {
  if (where === 'opfs') {
    const dir = await opfsDir(false);
    if (!dir) return null;
    try {
      const file = await (await dir.getFileHandle(OPFS_FILE)).getFile();
      return unpack(await file.arrayBuffer());
    } catch (e) {
      if (e?.name === 'NotFoundError') return null;
      throw e;
    }
  }
  const r = await dbGet('dataset');
  return r?.files ?? null;
}

/** Removes the stored dataset (OPFS and IndexedDB). */
export async function forgetDataset() {
  const dir = await opfsDir(false).catch(() => null);
  if (dir) await dir.removeEntry(OPFS_FILE).catch((e) => { if (e?.name !== 'NotFoundError') throw e; });
  await dbDelete('dataset');
}

/** What is stored: { opfs: bytes or null, indexeddb: file count or null } (for the page's state and its test). */
export async function storedDataset() {
  const dir = await opfsDir(false).catch(() => null);
  let opfs = null;
  if (dir) opfs = await dir.getFileHandle(OPFS_FILE).then((h) => h.getFile()).then((f) => f.size, () => null);
  const r = await dbGet('dataset');
  return { opfs, indexeddb: r?.files?.size ?? null };
}
