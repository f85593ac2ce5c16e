/**
 * What the library API needs of its platform, Node edition: files by path and image decoding (pngjs,
 * jpeg-js). The browser bundle replaces this module with host.browser.ts (scripts/build-browser.mjs), so
 * the platform-neutral API modules (engine, model, detector) import only this seam.
 */
import fs from 'node:fs';
import path from 'node:path';
import { decodeImage, loadImage, type DecodeImageOptions, type Image } from '../data/image.js';
import { writeFileAtomic } from '../util/fs.js';

export const platform: 'node' | 'browser' = 'node';

export function readBytes(file: string): Uint8Array {
  return fs.readFileSync(file);
}

export function readText(file: string): string {
  return fs.readFileSync(file, 'utf8');
}

/** Writes atomically (a temporary file renamed over the target); creates the folder. */
export function writeBytes(file: string, data: Uint8Array | string): void {
  writeFileAtomic(file, data);
}

export function baseName(file: string): string {
  return path.basename(file);
}

/**
 * Decodes a PNG or JPEG file into a planar RGB image. ImageError when it cannot be read (naming the path),
 * is not PNG / JPEG, is corrupt, or declares more pixels than `opts.maxPixels` (checked before decoding).
 */
export async function decodeImageFile(file: string, opts: DecodeImageOptions = {}): Promise<Image> {
  return loadImage(file, opts);
}

/** Decodes PNG or JPEG bytes (by magic bytes), with the same checks as decodeImageFile. */
export async function decodeImageBytes(bytes: Uint8Array, name = 'image', opts: DecodeImageOptions = {}): Promise<Image> {
  return decodeImage(bytes, name, opts);
}

/** Browser image objects (ImageBitmap, HTMLImageElement, canvases): none exist in Node. */
export function isDrawable(_x: unknown): boolean {
  return false;
}

export async function decodeDrawable(_x: unknown, _opts: DecodeImageOptions = {}): Promise<Image> {
  throw new TypeError('ImageBitmap / canvas images exist only in a browser: pass { data, width, height } or a path');
}
