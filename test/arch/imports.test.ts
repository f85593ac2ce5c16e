/**
 * The import graph of src/ (what the package ships), read with the TypeScript parser:
 *   1. src/ imports nothing outside src/ (bench/, test/, examples/, scripts/, fixtures/: none of them ship);
 *      type-level imports count here too, since tsc follows them into the build;
 *   2. no value-level import cycle among src/ modules (Node's resolution, and the browser bundle's, where
 *      X.browser.ts stands in for X.ts); each cycle is reported as a chain of files;
 *   3. the one way from src/ into the checkout's bench/ (`bench peers`, `bench chart`: TF.js and ONNX Runtime
 *      are devDependencies) is loadCheckoutBench in src/cli/bench.ts, a computed import() that tsc does not
 *      follow, which says "needs a checkout" where bench/ is absent (an installed package). No other import()
 *      in src/ has a computed specifier.
 * Value level: `import` / `export ... from` statements, `import x = require()`, and `import('...')` /
 * `require('...')` calls with a string literal (a lazy import still ties the layers together, so it counts).
 * Type level (not a cycle): `import type`, `export type ... from`, `import { type A, type B }` where every
 * name is type-only, and `typeof import('...')` in types.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import ts from 'typescript';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { packageRoot } from '../../src/util/paths.js';
import { loadCheckoutBench, type CheckoutBench } from '../../src/cli/bench.js';
import type * as PeersModule from '../../bench/peers.js';
import type * as ChartModule from '../../bench/chart.js';

// Compile-time (tsc --noEmit -p .): bench/peers.ts and bench/chart.ts still provide what the CLI types them as.
type Provides<T extends CheckoutBench> = T;
export type CheckoutBenchProvided = Provides<{ peers: typeof PeersModule; chart: typeof ChartModule }>;

const root = packageRoot();

type Kind = 'static' | 'dynamic' | 'type' | 'computed';
interface ImportRef {
  spec: string;
  kind: Kind;
  line: number;
  /** the innermost named function around a computed import() */
  fn?: string;
}

/** Every import of a TypeScript source text. */
export function importsOf(file: string, text: string): ImportRef[] {
  const sf = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true);
  const out: ImportRef[] = [];
  const lineOf = (n: ts.Node) => sf.getLineAndCharacterOfPosition(n.getStart(sf)).line + 1;
  const add = (spec: string, kind: Kind, n: ts.Node) => out.push({ spec, kind, line: lineOf(n) });
  const allTypes = (els: ts.NodeArray<ts.ImportSpecifier | ts.ExportSpecifier>) => els.length > 0 && els.every((e) => e.isTypeOnly);
  const fnName = (n: ts.Node): string | undefined => {
    for (let p: ts.Node | undefined = n.parent; p; p = p.parent) {
      if ((ts.isFunctionDeclaration(p) || ts.isMethodDeclaration(p)) && p.name) return p.name.getText(sf);
      if ((ts.isArrowFunction(p) || ts.isFunctionExpression(p)) && ts.isVariableDeclaration(p.parent)) return p.parent.name.getText(sf);
    }
    return undefined;
  };
  const visit = (n: ts.Node): void => {
    if (ts.isImportDeclaration(n) && ts.isStringLiteral(n.moduleSpecifier)) {
      const c = n.importClause;
      const typeOnly = !!c && (c.isTypeOnly || (!c.name && !!c.namedBindings && ts.isNamedImports(c.namedBindings) && allTypes(c.namedBindings.elements)));
      add(n.moduleSpecifier.text, typeOnly ? 'type' : 'static', n);
    } else if (ts.isExportDeclaration(n) && n.moduleSpecifier && ts.isStringLiteral(n.moduleSpecifier)) {
      const typeOnly = n.isTypeOnly || (!!n.exportClause && ts.isNamedExports(n.exportClause) && allTypes(n.exportClause.elements));
      add(n.moduleSpecifier.text, typeOnly ? 'type' : 'static', n);
    } else if (ts.isImportEqualsDeclaration(n) && ts.isExternalModuleReference(n.moduleReference) && ts.isStringLiteral(n.moduleReference.expression)) {
      add(n.moduleReference.expression.text, n.isTypeOnly ? 'type' : 'static', n);
    } else if (ts.isImportTypeNode(n) && ts.isLiteralTypeNode(n.argument) && ts.isStringLiteral(n.argument.literal)) {
      add(n.argument.literal.text, 'type', n);
    } else if (ts.isCallExpression(n) && (n.expression.kind === ts.SyntaxKind.ImportKeyword || (ts.isIdentifier(n.expression) && n.expression.text === 'require'))) {
      const a = n.arguments[0];
      if (a && ts.isStringLiteralLike(a)) add(a.text, 'dynamic', n);
      else if (n.expression.kind === ts.SyntaxKind.ImportKeyword) out.push({ spec: a ? a.getText(sf) : '', kind: 'computed', line: lineOf(n), fn: fnName(n) });
    }
    ts.forEachChild(n, visit);
  };
  visit(sf);
  return out;
}

/** The repo-relative .ts file a relative specifier names (`./x.js` -> x.ts), or the bare path when there is none. */
function resolveRel(from: string, spec: string): string {
  const abs = path.resolve(root, path.dirname(from), spec);
  const rel = path.relative(root, abs).split(path.sep).join('/');
  for (const cand of [rel.replace(/\.js$/, '.ts'), `${rel}.ts`, `${rel}/index.ts`]) if (fs.existsSync(path.join(root, cand))) return cand;
  return rel;
}

function srcFiles(): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const e of fs.readdirSync(path.join(root, d), { withFileTypes: true })) {
      const p = `${d}/${e.name}`;
      if (e.isDirectory()) walk(p);
      else if (e.name.endsWith('.ts') && !e.name.endsWith('.d.ts')) out.push(p);
    }
  };
  walk('src');
  return out.sort();
}

interface Edge { from: string; to: string; ref: ImportRef }

const files = srcFiles();
const refs = new Map(files.map((f) => [f, importsOf(f, fs.readFileSync(path.join(root, f), 'utf8'))]));
const edges: Edge[] = [];
for (const [f, rs] of refs) for (const r of rs) if (r.kind !== 'computed' && r.spec.startsWith('.')) edges.push({ from: f, to: resolveRel(f, r.spec), ref: r });

/** Cycles of the value-level graph: one chain per strongly connected component (Tarjan), `a -> b -> a`. */
function cycles(graph: Map<string, string[]>): string[] {
  let next = 0;
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const found: string[] = [];
  const chain = (scc: Set<string>, start: string): string => {
    // shortest way from start back to start inside the component (BFS)
    const prev = new Map<string, string>();
    const queue = [start];
    while (queue.length) {
      const v = queue.shift()!;
      for (const w of graph.get(v) ?? []) {
        if (!scc.has(w)) continue;
        if (w === start) {
          const path = [start];
          for (let u = v; u !== start; u = prev.get(u)!) path.unshift(u);
          path.unshift(start);
          return path.join(' -> ');
        }
        if (!prev.has(w)) { prev.set(w, v); queue.push(w); }
      }
    }
    return start;
  };
  const strong = (v: string): void => {
    index.set(v, next);
    low.set(v, next++);
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!index.has(w)) { strong(w); low.set(v, Math.min(low.get(v)!, low.get(w)!)); }
      else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) === index.get(v)) {
      const scc = new Set<string>();
      let w: string;
      do { w = stack.pop()!; onStack.delete(w); scc.add(w); } while (w !== v);
      if (scc.size > 1 || (graph.get(v) ?? []).includes(v)) found.push(`${chain(scc, [...scc].sort()[0])} (${scc.size} files in the cycle: ${[...scc].sort().join(', ')})`);
    }
  };
  for (const v of [...graph.keys()].sort()) if (!index.has(v)) strong(v);
  return found;
}

/** Value edges among src/ files; browser: X.browser.ts stands in for X.ts (scripts/build-browser.mjs). */
function valueGraph(browser: boolean): Map<string, string[]> {
  const isAlt = (f: string) => f.endsWith('.browser.ts');
  const alt = (f: string) => f.replace(/\.ts$/, '.browser.ts');
  const swap = (f: string) => (browser && refs.has(alt(f)) ? alt(f) : f);
  const nodes = files.filter((f) => (browser ? !refs.has(alt(f)) : !isAlt(f)));
  const g = new Map<string, string[]>(nodes.map((f) => [f, []]));
  for (const e of edges) {
    const to = swap(e.to);
    if (e.ref.kind !== 'type' && g.has(e.from) && g.has(to)) g.get(e.from)!.push(to);
  }
  return g;
}

test('the parser: multi-line lists, type-only forms, export-from, literal and computed import()', () => {
  const r = importsOf('x.ts', `
    import a, {
      b,
      type C,
    } from './a.js';
    import type { D } from './d.js';
    import { type E, type F } from './e.js';
    import {} from './side.js';
    import './side2.js';
    export { g } from './g.js';
    export type { H } from './h.js';
    export { type I } from './i.js';
    export * from './star.js';
    type J = typeof import('./j.js');
    async function load(what: string) {
      await import('./k.js');
      return import(\`./\${what}.js\`);
    }
  `);
  assert.equal(r.map((x) => `${x.spec} ${x.kind}${x.fn ? ` ${x.fn}` : ''}`), [
    './a.js static', './d.js type', './e.js type', './side.js static', './side2.js static', './g.js static', './h.js type',
    './i.js type', './star.js static', './j.js type', './k.js dynamic', '`./${what}.js` computed load',
  ]);
});

test('src/ imports nothing outside src/ (no bench/, test/, examples/, scripts/, fixtures/)', () => {
  assert.ok(files.length > 100, `found ${files.length} files under src/`);
  const out = edges.filter((e) => !e.to.startsWith('src/')).map((e) => `${e.from}:${e.ref.line} imports '${e.ref.spec}' (${e.ref.kind}) -> ${e.to}`);
  assert.equal(out, [], `src/ must not import outside src/:\n  ${out.join('\n  ')}`);
});

test('no value-level import cycles among src/ modules (Node resolution and the browser bundle)', () => {
  const node = cycles(valueGraph(false));
  assert.equal(node, [], `value-level import cycles in src/:\n  ${node.join('\n  ')}`);
  const browser = cycles(valueGraph(true));
  assert.equal(browser, [], `value-level import cycles in src/ as the browser bundle resolves it:\n  ${browser.join('\n  ')}`);
});

test('what ships is src/: package.json files and the package build hold nothing of bench/', () => {
  const pj = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')) as { files: string[] };
  assert.equal(pj.files.filter((f) => /(^|\/)bench\//.test(f) && !f.startsWith('dist/src/')), []);
  const build = JSON.parse(fs.readFileSync(path.join(root, 'tsconfig.build.json'), 'utf8')) as { include: string[] };
  assert.equal(build.include.filter((f) => !f.startsWith('src/')), [], 'tsconfig.build.json compiles src/ only');
});

test('the cycle finder names a cycle as a chain of files', () => {
  const g = new Map([['a', ['b']], ['b', ['c']], ['c', ['a', 'd']], ['d', []], ['e', ['e']]]);
  assert.equal(cycles(g), ['a -> b -> c -> a (3 files in the cycle: a, b, c)', 'e -> e (1 files in the cycle: e)']);
});

test('computed import() only in the guarded loader (src/cli/bench.ts loadCheckoutBench), which says "needs a checkout"', () => {
  const computed = [...refs].flatMap(([f, rs]) => rs.filter((r) => r.kind === 'computed').map((r) => ({ f, r })));
  assert.equal(computed.map(({ f, r }) => `${f} ${r.fn}`), ['src/cli/bench.ts loadCheckoutBench'],
    `computed import() outside the guarded loader: ${computed.filter(({ f, r }) => f !== 'src/cli/bench.ts' || r.fn !== 'loadCheckoutBench')
      .map(({ f, r }) => `${f}:${r.line} import(${r.spec}) in ${r.fn ?? '?'}`).join(', ')}`);
  const text = fs.readFileSync(path.join(root, 'src/cli/bench.ts'), 'utf8');
  const body = text.slice(text.indexOf('export async function loadCheckoutBench'));
  assert.match(body.slice(0, body.indexOf('\n}\n')), 'needs a checkout (bench/ with its devDependencies');
});

test('loadCheckoutBench: loads bench/peers and bench/chart in a checkout; elsewhere "needs a checkout"', async () => {
  const peers = await loadCheckoutBench('peers');
  assert.type(peers.benchPeers, 'function');
  assert.type(peers.formatPeersBench, 'function');
  const chart = await loadCheckoutBench('chart');
  assert.type(chart.writeBenchChart, 'function');
  // an installed package: node_modules/yolo-wgsl/dist/src/cli/bench.js with no dist/bench/ beside it
  const pkg = fs.mkdtempSync(path.join(os.tmpdir(), 'yolo-wgsl-installed-'));
  try {
    fs.mkdirSync(path.join(pkg, 'dist/src/cli'), { recursive: true });
    const from = pathToFileURL(path.join(pkg, 'dist/src/cli/bench.js')).href;
    for (const what of ['peers', 'chart'] as const) {
      const err = await loadCheckoutBench(what, from).then(() => null, (e: Error) => e);
      assert.ok(err, `bench ${what} loaded without bench/`);
      assert.match(err.message, `bench ${what} needs a checkout (bench/ with its devDependencies`);
      assert.match(err.message, 'make deps');
    }
  } finally {
    fs.rmSync(pkg, { recursive: true, force: true });
  }
});

test.run();
