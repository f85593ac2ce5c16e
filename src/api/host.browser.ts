/**
 * What the library API needs of its platform, browser edition (see host.ts): no paths (pass fetched
 * bytes), images decoded by the browser (createImageBitmap) and read back through an OffscreenCanvas.
 */
import { checkImageSize, fromInterleaved, imageDimensions, resolveMaxPixels, type DecodeImageOptions, type Image } from '../data/image.js';

export const platform: 'node' | 'browser' = 'browser';

function noPaths(what: string): never {
  throw new TypeError(`${what}: file paths are not available in a browser; pass the bytes instead (e.g. new Uint8Array(await (await fetch(url)).arrayBuffer()))`);
}

export function readBytes(file: string): Uint8Array {
  return noPaths(`reading ${file}`);
}

export function readText(file: string): string {
  return noPaths(`reading ${file}`);
}

export function writeBytes(file: string, _data: Uint8Array | string): void {
  noPaths(`writing ${file}`);
}

export function baseName(file: string): string {
  return file.split(/[\\/]/).pop() ?? file;
}

export async function decodeImageFile(file: string, _opts: DecodeImageOptions = {}): Promise<Image> {
  return noPaths(`decoding ${file}`);
}

/**
 * Decodes image bytes with the browser's decoder. For PNG and JPEG the size the header declares is checked
 * against `opts.maxPixels` first (ImageError 'IMAGE_TOO_LARGE', as in Node), before the browser allocates
 * anything; other formats the browser knows are checked once decoded, before their pixels are read.
 */
export async function decodeImageBytes(bytes: Uint8Array, name = 'image', opts: DecodeImageOptions = {}): Promise<Image> {
  const limit = resolveMaxPixels(opts.maxPixels);
  const dims = imageDimensions(bytes, name);
  if (dims) checkImageSize(name, dims.width, dims.height, limit);
  const blob = new Blob([bytes as BlobPart]);
  const bitmap = await createImageBitmap(blob, { colorSpaceConversion: 'none', premultiplyAlpha: 'none' });
  try {
    return await decodeDrawable(bitmap, { maxPixels: limit }, name);
  } finally {
    bitmap.close();
  }
}

export function isDrawable(x: unknown): boolean {
  return (typeof ImageBitmap !== 'undefined' && x instanceof ImageBitmap)
    || (typeof HTMLImageElement !== 'undefined' && x instanceof HTMLImageElement)
    || (typeof HTMLCanvasElement !== 'undefined' && x instanceof HTMLCanvasElement)
    || (typeof OffscreenCanvas !== 'undefined' && x instanceof OffscreenCanvas);
}

/**
 * Draws an ImageBitmap / <img> / canvas onto an OffscreenCanvas and reads its RGBA pixels; width x height is
 * checked against `opts.maxPixels` first (ImageError 'IMAGE_TOO_LARGE').
 */
export async function decodeDrawable(x: unknown, opts: DecodeImageOptions = {}, name = 'image'): Promise<Image> {
  const src = x as CanvasImageSource & { width: number; height: number; naturalWidth?: number; naturalHeight?: number };
  const width = src.naturalWidth || src.width;
  const height = src.naturalHeight || src.height;
  checkImageSize(name, width, height, opts.maxPixels);
  const canvas = new OffscreenCanvas(width, height);
  const ctx = canvas.getContext('2d', { willReadFrequently: true }) as OffscreenCanvasRenderingContext2D | null;
  if (!ctx) throw new Error('no 2D context on an OffscreenCanvas');
  ctx.drawImage(src, 0, 0);
  const data = ctx.getImageData(0, 0, width, height).data;
  return fromInterleaved(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), width, height, 4);
}
