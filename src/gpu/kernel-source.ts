/**
 * Where the WGSL comes from in Node: the kernels/ folder shipped with the package (src/util/paths.ts finds
 * it from this module's location, in a checkout and in an installed package alike; YOLO_WGSL_KERNELS
 * overrides it). The browser bundle replaces this module with kernel-source.browser.ts.
 */
import fs from 'node:fs';
import path from 'node:path';
import { kernelsDir } from '../util/paths.js';

/** The text of kernels/<file> ('conv2d_direct.wgsl', 'lib/act.wgsl'). */
export function readKernelFile(file: string): string {
  return fs.readFileSync(path.join(kernelsDir(), file), 'utf8');
}
