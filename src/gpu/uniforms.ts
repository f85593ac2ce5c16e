/**
 * The TS <-> WGSL uniform contract. A kernel's scalar parameters live in the struct bound as
 * `@group(0) @binding(0) var<uniform> NAME: Struct;`, and that struct is the single source of truth: when a
 * kernel module is loaded its uniform structs are parsed into ordered, typed fields with their byte offsets
 * (WGSL uniform layout rules), and an op passes its values by field name,
 *
 *   gpu.dispatch(spec, { n, w, h, s, scale }, bindings, groups)
 *
 * which packUniforms() writes as u32 / i32 / f32 according to each field's declared type. A missing or unknown
 * field, or a value the field's type cannot hold, is a GpuError of kind 'params' naming the kernel and field.
 *
 * Supported field types: u32, i32, f32 (what every kernel uses today). Anything else (vectors, arrays, nested
 * structs, @align/@size attributes) fails when the module is loaded, naming the file, struct and field: extend
 * FIELD_TYPES and packUniforms() together when a kernel needs one.
 */
import { GpuError } from './errors.js';

export type UniformType = 'u32' | 'i32' | 'f32';

/** Named uniform values of one dispatch: one number per field of the kernel's uniform struct. */
export type Uniforms = Readonly<Record<string, number>>;

const U32 = 0;
const I32 = 1;
const F32 = 2;
const FIELD_TYPES: Record<string, { kind: number; size: number; align: number }> = {
  u32: { kind: U32, size: 4, align: 4 },
  i32: { kind: I32, size: 4, align: 4 },
  f32: { kind: F32, size: 4, align: 4 },
};
const TYPE_NAMES: readonly UniformType[] = ['u32', 'i32', 'f32'];

export interface UniformField {
  readonly name: string;
  readonly type: UniformType;
  /** Byte offset in the struct. */
  readonly offset: number;
  /** offset / 4: the index into a Uint32Array / Int32Array / Float32Array view of the slot. */
  readonly word: number;
  /** 0 u32, 1 i32, 2 f32 (the packer's switch). */
  readonly kind: number;
}

/** The uniform struct one entry point reads, laid out. */
export interface UniformLayout {
  /** The WGSL variable (`P`) and its struct type (`Params`); '' when the entry reads no uniform. */
  readonly variable: string;
  readonly struct: string;
  readonly fields: readonly UniformField[];
  /** Struct size in bytes (WGSL SizeOf). */
  readonly size: number;
  /** The size bound at @binding(0): the struct size rounded up to 16 bytes, at least 16. */
  readonly bindingSize: number;
}

export const EMPTY_LAYOUT: UniformLayout = { variable: '', struct: '', fields: [], size: 0, bindingSize: 16 };

/** The uniform structs of one preprocessed kernel module, and which one each entry point reads. */
export interface ModuleUniforms {
  /** The kernel file ('yolo_loss.wgsl'), for error messages. */
  readonly file: string;
  /** Layouts of the @group(0) @binding(0) uniform variables, by variable name. */
  readonly variables: ReadonlyMap<string, UniformLayout>;
  /** The layout `entry` reads (cached per entry). Throws a GpuError('compile') if that is ambiguous. */
  forEntry(entry: string): UniformLayout;
}

/** Replaces // and (nested) /* *\/ comments by spaces, keeping newlines (so offsets and line numbers hold). */
export function stripComments(text: string): string {
  let out = '';
  let i = 0;
  let start = 0;
  const n = text.length;
  const blank = (from: number, to: number) => text.slice(from, to).replace(/[^\n]/g, ' ');
  while (i < n) {
    const c = text.charCodeAt(i);
    if (c === 0x2f /* / */ && text.charCodeAt(i + 1) === 0x2f) {
      let j = text.indexOf('\n', i);
      if (j < 0) j = n;
      out += text.slice(start, i) + blank(i, j);
      i = start = j;
    } else if (c === 0x2f && text.charCodeAt(i + 1) === 0x2a /* * */) {
      let depth = 1;
      let j = i + 2;
      while (j < n && depth > 0) {
        if (text.charCodeAt(j) === 0x2f && text.charCodeAt(j + 1) === 0x2a) { depth++; j += 2; }
        else if (text.charCodeAt(j) === 0x2a && text.charCodeAt(j + 1) === 0x2f) { depth--; j += 2; }
        else j++;
      }
      out += text.slice(start, i) + blank(i, j);
      i = start = j;
    } else {
      i++;
    }
  }
  return out + text.slice(start);
}

const lineOf = (text: string, at: number) => text.slice(0, at).split('\n').length;

/** Splits on commas at bracket depth 0 (`array<f32, 4>` stays one piece). */
function splitTop(body: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let from = 0;
  for (let i = 0; i < body.length; i++) {
    const c = body[i];
    if (c === '<' || c === '(' || c === '[') depth++;
    else if (c === '>' || c === ')' || c === ']') depth--;
    else if (c === ',' && depth === 0) {
      parts.push(body.slice(from, i));
      from = i + 1;
    }
  }
  parts.push(body.slice(from));
  return parts.map((p) => p.trim()).filter((p) => p.length > 0);
}

/** Lays out `struct` (declared in `code`, comments stripped) for the uniform address space. */
function layoutStruct(code: string, file: string, variable: string, struct: string): UniformLayout {
  const re = new RegExp(`\\bstruct\\s+${struct}\\s*\\{`, 'g');
  const m = re.exec(code);
  if (!m) throw new GpuError('compile', file, `the uniform ${variable} at @group(0) @binding(0) has type ${struct}, which is not a struct declared in the module (dispatch packs the fields of a struct)`);
  const open = m.index + m[0].length;
  const close = code.indexOf('}', open);
  if (close < 0) throw new GpuError('compile', file, `struct ${struct} (line ${lineOf(code, m.index)}) is not closed`);
  const fields: UniformField[] = [];
  const seen = new Set<string>();
  let offset = 0;
  let align = 4;
  for (const decl of splitTop(code.slice(open, close))) {
    const fm = /^([A-Za-z_]\w*)\s*:\s*(.+)$/s.exec(decl);
    if (!fm) {
      const what = decl.startsWith('@') ? `has an attribute (${decl.split(/\s+/)[0]}), which the uniform packer does not lay out` : 'cannot be parsed';
      throw new GpuError('compile', file, `uniform struct ${struct} field '${decl.replace(/\s+/g, ' ')}' ${what}`);
    }
    const [, name, rawType] = fm;
    const type = rawType.replace(/\s+/g, '');
    const t = FIELD_TYPES[type];
    if (!t) throw new GpuError('compile', file, `uniform struct ${struct} field '${name}' has type ${type}, which dispatch cannot pack (supported: ${Object.keys(FIELD_TYPES).join(', ')}; see src/gpu/uniforms.ts)`);
    if (seen.has(name)) throw new GpuError('compile', file, `uniform struct ${struct} declares field '${name}' twice`);
    seen.add(name);
    offset = Math.ceil(offset / t.align) * t.align;
    fields.push({ name, type: TYPE_NAMES[t.kind], offset, word: offset / 4, kind: t.kind });
    offset += t.size;
    align = Math.max(align, t.align);
  }
  if (!fields.length) throw new GpuError('compile', file, `uniform struct ${struct} has no fields`);
  const size = Math.ceil(offset / align) * align;
  return { variable, struct, fields, size, bindingSize: Math.max(16, Math.ceil(size / 16) * 16) };
}

/** Function name -> the identifiers its body references (member names after '.' excluded). */
function functionRefs(code: string): Map<string, Set<string>> {
  const fns = new Map<string, Set<string>>();
  const re = /\bfn\s+([A-Za-z_]\w*)\s*\(/g;
  let m: RegExpExecArray | null;
  while ((m = re.exec(code))) {
    const open = code.indexOf('{', re.lastIndex);
    if (open < 0) break;
    let depth = 0;
    let end = open;
    for (; end < code.length; end++) {
      const c = code[end];
      if (c === '{') depth++;
      else if (c === '}' && --depth === 0) break;
    }
    const refs = new Set<string>();
    for (const id of code.slice(open, end).matchAll(/(\.\s*)?\b([A-Za-z_]\w*)\b/g)) if (!id[1]) refs.add(id[2]);
    fns.set(m[1], refs);
    re.lastIndex = end;
  }
  return fns;
}

/**
 * Parses the uniform structs of a preprocessed module (includes resolved; `{{NAME}}` placeholders may remain:
 * they are never part of a uniform struct). Throws a GpuError('compile') naming `file` and the field for a
 * struct the packer cannot lay out.
 */
export function parseModuleUniforms(text: string, file: string): ModuleUniforms {
  const code = stripComments(text);
  const variables = new Map<string, UniformLayout>();
  const decl = /((?:@\s*\w+\s*(?:\([^)]*\))?\s*)*)\bvar\s*<\s*uniform\s*>\s*([A-Za-z_]\w*)\s*:\s*([^;=]+?)\s*;/g;
  for (const m of code.matchAll(decl)) {
    const attr = (name: string) => new RegExp(`@\\s*${name}\\s*\\(\\s*(\\w+)\\s*\\)`).exec(m[1])?.[1];
    const group = attr('group');
    const binding = attr('binding');
    if (!((group === '0' || group === '0u' || group === '0i') && (binding === '0' || binding === '0u' || binding === '0i'))) continue;
    const [, , variable, type] = m;
    if (!/^[A-Za-z_]\w*$/.test(type) || FIELD_TYPES[type]) {
      throw new GpuError('compile', file, `the uniform ${variable} at @group(0) @binding(0) has type ${type.trim()}: dispatch packs a struct of named fields there`);
    }
    variables.set(variable, layoutStruct(code, file, variable, type));
  }
  let refs: Map<string, Set<string>> | null = null;
  const perEntry = new Map<string, UniformLayout>();
  return {
    file,
    variables,
    forEntry(entry: string): UniformLayout {
      let l = perEntry.get(entry);
      if (l) return l;
      if (variables.size <= 1) {
        l = variables.size ? variables.values().next().value! : EMPTY_LAYOUT;
      } else {
        // Several uniforms share binding 0 (entries of one module with different parameters): the entry's
        // is the one its call graph references.
        refs ??= functionRefs(code);
        if (!refs.has(entry)) throw new GpuError('compile', `${file}:${entry}`, `entry point ${entry} not found, so which of the uniforms ${[...variables.keys()].join(', ')} at @binding(0) it reads is unknown`);
        const used = new Set<string>();
        const visited = new Set<string>([entry]);
        const todo = [entry];
        while (todo.length) {
          for (const id of refs.get(todo.pop()!)!) {
            if (variables.has(id)) used.add(id);
            else if (refs.has(id) && !visited.has(id)) {
              visited.add(id);
              todo.push(id);
            }
          }
        }
        if (used.size > 1) throw new GpuError('compile', `${file}:${entry}`, `entry point ${entry} reads the uniforms ${[...used].join(' and ')}, both at @group(0) @binding(0)`);
        l = used.size ? variables.get([...used][0])! : EMPTY_LAYOUT;
      }
      perEntry.set(entry, l);
      return l;
    },
  };
}

// ------------------------------------------------------------------------------------------ packing

function describe(v: unknown): string {
  return typeof v === 'number' ? String(v) : v === undefined ? 'undefined' : `${typeof v} ${JSON.stringify(v)}`;
}

/** Why `v` cannot be written to a field of kind `kind`, or null if it can. */
function badValue(kind: number, v: unknown): string | null {
  if (typeof v !== 'number') return `is ${describe(v)}, not a number`;
  if (kind === F32) return null;
  if (!Number.isFinite(v)) return `is ${v}: an integer field needs a finite value`;
  if (!Number.isInteger(v)) return `is ${v}, not an integer`;
  if (kind === U32 && v < 0) return `is ${v}: a u32 cannot be negative`;
  if (kind === U32 && v > 0xffffffff) return `is ${v}, above the u32 maximum 4294967295`;
  if (kind === I32 && (v < -0x80000000 || v > 0x7fffffff)) return `is ${v}, outside the i32 range`;
  return null;
}

function paramsError(kernel: string, L: UniformLayout, what: string): GpuError {
  return new GpuError('params', kernel, `${L.struct ? `uniform struct ${L.struct} (${L.variable})` : 'no uniform struct at @binding(0)'}: ${what}`);
}

/** The precise complaint about a params object whose keys do not match the fields. */
function keysError(kernel: string, L: UniformLayout, params: Uniforms): GpuError {
  const names = new Set(L.fields.map((f) => f.name));
  const unknown = Object.keys(params).filter((k) => !names.has(k));
  const missing = L.fields.filter((f) => params[f.name] === undefined).map((f) => f.name);
  const parts: string[] = [];
  if (missing.length) parts.push(`missing field${missing.length > 1 ? 's' : ''} ${missing.map((n) => `'${n}'`).join(', ')}`);
  if (unknown.length) parts.push(`unknown field${unknown.length > 1 ? 's' : ''} ${unknown.map((n) => `'${n}'`).join(', ')} (fields: ${L.fields.map((f) => f.name).join(', ') || 'none'})`);
  return paramsError(kernel, L, parts.join('; '));
}

/**
 * Writes `params` into a uniform slot: field f goes to word `base + f.word` of the views (u32 fields through
 * `u32`, i32 through `i32`, f32 through `f32`). Every field must be given, no other key, and each value must fit
 * its type (u32: integer in [0, 2^32); i32: integer in [-2^31, 2^31); f32: any number); otherwise throws a
 * GpuError('params') naming `kernel` and the field. Allocates nothing on success.
 */
export function packUniforms(L: UniformLayout, kernel: string, params: Uniforms, u32: Uint32Array, i32: Int32Array, f32: Float32Array, base: number): void {
  const fields = L.fields;
  const n = fields.length;
  let keys = 0;
  for (const k in params) if (k) keys++;
  if (keys !== n) throw keysError(kernel, L, params);
  for (let i = 0; i < n; i++) {
    const f = fields[i];
    const v = params[f.name];
    switch (f.kind) {
      case U32:
        if (v >>> 0 !== v) throw fieldError(kernel, L, f, v, params);
        u32[base + f.word] = v;
        break;
      case I32:
        if ((v | 0) !== v) throw fieldError(kernel, L, f, v, params);
        i32[base + f.word] = v;
        break;
      default:
        if (typeof v !== 'number') throw fieldError(kernel, L, f, v, params);
        f32[base + f.word] = v;
    }
  }
}

function fieldError(kernel: string, L: UniformLayout, f: UniformField, v: unknown, params: Uniforms): GpuError {
  if (v === undefined) return keysError(kernel, L, params);
  return paramsError(kernel, L, `field '${f.name}' (${f.type}) ${badValue(f.kind, v) ?? `is ${describe(v)}`}`);
}
