/**
 * The catalog of kernels: every entry point of every kernels/*.wgsl with its default specialization, so
 * `doctor` (and a test) can compile all of them. A file declares the values its {{NAME}} placeholders
 * take by default in a comment line:   // @defaults TM=4 TN=4
 */
import fs from 'node:fs';
import path from 'node:path';
import { expandTemplate, type KernelSpec } from './device.js';
import { kernelsDir } from '../util/paths.js';

export function listKernelFiles(): string[] {
  return fs.readdirSync(kernelsDir()).filter((f) => f.endsWith('.wgsl')).map((f) => f.slice(0, -5)).sort();
}

/** All entry points of one kernel file, each with the file's default defines. */
export function kernelSpecs(file: string): KernelSpec[] {
  const text = fs.readFileSync(path.join(kernelsDir(), `${file}.wgsl`), 'utf8');
  const defines: Record<string, string> = {};
  for (const m of text.matchAll(/^\s*\/\/\s*@defaults\s+(.*)$/gm)) {
    for (const kv of m[1].trim().split(/\s+/)) {
      const [k, v] = kv.split('=');
      if (k && v !== undefined) defines[k] = v;
    }
  }
  const base = { file, entry: '', defines: Object.keys(defines).length ? defines : undefined };
  // Entry points of the default specialization: expand the template, drop comments, then look.
  let expanded: string;
  try {
    expanded = expandTemplate(text, base);
  } catch {
    expanded = text; // a missing default: compiling these specs reports it, naming the kernel
  }
  const code = expanded.replace(/\/\*[\s\S]*?\*\//g, '').replace(/\/\/.*$/gm, '');
  const specs: KernelSpec[] = [];
  for (const m of code.matchAll(/@compute\s+@workgroup_size\([^)]*\)\s*fn\s+(\w+)/g)) specs.push({ ...base, entry: m[1] });
  return specs;
}

export function allKernelSpecs(): KernelSpec[] {
  return listKernelFiles().flatMap(kernelSpecs);
}
