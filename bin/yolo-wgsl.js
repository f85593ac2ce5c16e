#!/usr/bin/env node
// Entry point: the compiled CLI (dist/, after `make build` / npm pack) or, in a checkout, the TypeScript
// sources through tsx.
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const built = join(root, 'dist', 'src', 'cli', 'main.js');
const argv = process.argv.slice(2);
let mod;
if (existsSync(built)) {
  mod = await import(pathToFileURL(built).href);
} else {
  const { register } = await import('tsx/esm/api');
  register();
  mod = await import(pathToFileURL(join(root, 'src', 'cli', 'main.ts')).href);
}
mod.main(argv).catch((e) => process.exit(mod.reportError(e, argv)));
