/**
 * The converters' files on disk (the CLI's `convert`, `convertToYolo`): a `SourceIO` over node:fs and
 * node:path, with image headers read by the dataset scanner's `readImageSize`. memory.ts has the same over
 * files held in memory.
 */
import fs from 'node:fs';
import path from 'node:path';
import { readImageSize } from '../dataset.js';
import type { SourceIO } from './source.js';

export const nodeSourceIO: SourceIO = {
  path,
  readText: (file) => fs.readFileSync(file, 'utf8'),
  list: (dir) => fs.readdirSync(dir, { withFileTypes: true }).map((e) => ({ name: e.name, dir: e.isDirectory(), file: e.isFile() })),
  exists: (p) => fs.existsSync(p),
  isFile: (p) => fs.existsSync(p) && fs.statSync(p).isFile(),
  isDir: (p) => fs.statSync(p).isDirectory(),
  imageSize: (file) => readImageSize(file),
  base64: (text) => Buffer.from(text, 'base64'),
};
