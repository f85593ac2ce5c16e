/**
 * What the library API needs of its platform, browser edition (see host.ts): no paths (pass fetched
 * bytes), images decoded by the browser (createImageBitmap) and read back through an OffscreenCanvas.
 */
import { fromInterleaved, type Image } from '../data/image.js';

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

export async function decodeImageFile(file: string): Promise<Image> {
  return noPaths(`decoding ${file}`);
}

export async function decodeImageBytes(bytes: Uint8Array, _name = 'image'): Promise<Image> {
  const blob = new Blob([bytes as BlobPart]);
  const bitmap = await createImageBitmap(blob, { colorSpaceConversion: 'none', premultiplyAlpha: 'none' });
  try {
    return await decodeDrawable(bitmap);
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

/** Draws an ImageBitmap / <img> / canvas onto an OffscreenCanvas and reads its RGBA pixels. */
export async function decodeDrawable(x: unknown): Promise<Image> {
  const src = x as CanvasImageSource & { width: number; height: number; naturalWidth?: number; naturalHeight?: number };
  const width = src.naturalWidth || src.width;
  const height = src.naturalHeight || src.height;
  const canvas = new OffscreenCanvas(width, height);
  const ctx = canvas.getContext('2d', { willReadFrequently: true }) as OffscreenCanvasRenderingContext2D | null;
  if (!ctx) throw new Error('no 2D context on an OffscreenCanvas');
  ctx.drawImage(src, 0, 0);
  const data = ctx.getImageData(0, 0, width, height).data;
  return fromInterleaved(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), width, height, 4);
}
