/**
 * The one file writer of the engine: every output (weights, checkpoints, detections JSON, .npy, plots,
 * reports) goes through `writeFileAtomic` or, for a writer that renames itself (checkpoint pairs),
 * `writeFileSynced`.
 *
 * - `fs.writeSync` may write fewer bytes than asked (a full disk writes what fits, then fails on the next
 *   call): the writers loop until every byte is written.
 * - On any failure (ENOSPC, EDQUOT, EIO, EACCES ...) the temporary file is removed, nothing is left under
 *   the final name (an existing file there is untouched), and the error is a `WriteError` naming the file
 *   being written and the system's code.
 * - The write itself goes through one seam, `setWriteHook`, so that tests can inject a fault (a disk that
 *   fills after N bytes) where no small filesystem can be mounted.
 */
import fs from 'node:fs';
import path from 'node:path';

/** A file could not be written; `file` is the final name, `code` the system error code (ENOSPC, ...). */
export class WriteError extends Error {
  override name = 'WriteError';
  constructor(readonly file: string, readonly code: string | undefined, cause: unknown) {
    const why = code === 'ENOSPC' ? 'no space left on device (ENOSPC)' : code === 'EDQUOT' ? 'disk quota exceeded (EDQUOT)' : ((cause as Error)?.message ?? String(cause));
    super(`cannot write ${file}: ${why}; nothing was written under that name`, { cause });
  }
}

/**
 * Test seam: replaces `fs.writeSync(fd, data, offset, length)` (returns the bytes written, may throw);
 * `target` is the final name being written.
 */
export type WriteHook = (target: string, fd: number, data: Uint8Array, offset: number, length: number) => number;
let writeHook: WriteHook | null = null;

/** Installs (or, with null, removes) the write fault-injection hook; returns the previous one. */
export function setWriteHook(hook: WriteHook | null): WriteHook | null {
  const prev = writeHook;
  writeHook = hook;
  return prev;
}

function writeAll(target: string, fd: number, data: Uint8Array): void {
  let off = 0;
  while (off < data.length) {
    const n = writeHook ? writeHook(target, fd, data, off, data.length - off) : fs.writeSync(fd, data, off, data.length - off);
    if (!(n > 0)) throw Object.assign(new Error('write made no progress'), { code: 'EIO' });
    off += n;
  }
}

const toBytes = (data: string | Uint8Array): Uint8Array => (typeof data === 'string' ? Buffer.from(data) : data);
const codeOf = (e: unknown): string | undefined => (e as NodeJS.ErrnoException)?.code;

/**
 * Writes `data` to `file` (created or truncated), every byte, then fsync. On failure the file is removed
 * and a WriteError naming `label` (default: the file) is thrown. For writers that rename the file
 * themselves (src/train/checkpoint.ts).
 */
export function writeFileSynced(file: string, data: string | Uint8Array, label = file, sync = true): void {
  let fd: number | null = null;
  try {
    fd = fs.openSync(file, 'w');
    writeAll(label, fd, toBytes(data));
    if (sync) fs.fsyncSync(fd);
    fs.closeSync(fd);
    fd = null;
  } catch (e) {
    if (fd !== null) {
      try {
        fs.closeSync(fd);
      } catch { /* already failing */ }
    }
    fs.rmSync(file, { force: true });
    throw e instanceof WriteError ? e : new WriteError(label, codeOf(e), e);
  }
}

/**
 * Writes a file atomically: a temporary file in the same folder, every byte written, fsync, then rename
 * over the target, so a crash at any moment leaves either the old file or the new one, never a torn one,
 * and a failed write (a full disk) leaves no temporary behind and the old file (if any) as it was.
 * `sync: false` skips the fsyncs (still never torn or truncated under its name, but not durable across a
 * power loss): for bulk outputs that can be regenerated, such as the synthetic dataset.
 */
export function writeFileAtomic(file: string, data: string | Uint8Array, opts: { sync?: boolean } = {}): void {
  const sync = opts.sync ?? true;
  const dir = path.dirname(path.resolve(file));
  try {
    fs.mkdirSync(dir, { recursive: true });
  } catch (e) {
    throw new WriteError(file, codeOf(e), e);
  }
  const tmp = path.join(dir, `.${path.basename(file)}.${process.pid}.${Date.now()}.tmp`);
  writeFileSynced(tmp, data, file, sync);
  try {
    fs.renameSync(tmp, file);
  } catch (e) {
    fs.rmSync(tmp, { force: true });
    throw new WriteError(file, codeOf(e), e);
  }
  // make the rename itself durable (best effort: not every platform can open a directory)
  if (!sync) return;
  try {
    const d = fs.openSync(dir, 'r');
    try {
      fs.fsyncSync(d);
    } finally {
      fs.closeSync(d);
    }
  } catch { /* e.g. Windows */ }
}

/**
 * Creates (or replaces) the symbolic link `file` -> `target` atomically: a temporary link in the same folder
 * renamed over `file`, so a failure leaves the old entry (if any) and no temporary; a WriteError names `file`.
 * For outputs that reference large inputs instead of copying them (`convert` links the source images).
 */
export function symlinkAtomic(target: string, file: string): void {
  const dir = path.dirname(path.resolve(file));
  const tmp = path.join(dir, `.${path.basename(file)}.${process.pid}.${Date.now()}.tmp`);
  try {
    fs.mkdirSync(dir, { recursive: true });
    fs.symlinkSync(target, tmp);
    fs.renameSync(tmp, file);
  } catch (e) {
    fs.rmSync(tmp, { force: true });
    throw new WriteError(file, codeOf(e), e);
  }
}
