/**
 * Darknet .cfg parser. Keeps file:line for every section and key so that every error can name where it
 * comes from, and offers typed accessors (int / float / string / lists, with defaults) whose errors name
 * file:line, the section and the key.
 *
 * Syntax (Darknet's read_cfg + strip + read_option, with the sharp edges made explicit):
 *   - `[name]` starts a section; `key=value` adds an option to the current section.
 *   - Blank lines and lines starting with `#` or `;` are comments; text after a `#` or `;` on a line is a
 *     trailing comment (Darknet's atoi/atof stop there; we cut it off before validating the value).
 *   - Darknet removes every space / tab / CR from a line before parsing; so do we (`saturation = 1.5`,
 *     `anchors = 10,13,  16,30` are fine).
 *   - A repeated key in one section: every occurrence is kept (`CfgSection.all(key)`), the LAST one is what
 *     the accessors return, and a warning names both lines. (Darknet's option_find returns the FIRST one;
 *     the only repeats in the reference corpus are training keys of [net]: batch/subdivisions/decay.)
 *   - A line that is not a section header and has no `=`, a key with an empty value, or a key before the
 *     first section is a CfgError (Darknet prints "Config file error" or silently drops it).
 */
import fs from 'node:fs';

export class CfgError extends Error {
  override name = 'CfgError';
  constructor(
    readonly file: string,
    readonly line: number,
    readonly key: string | undefined,
    readonly detail: string,
  ) {
    super(`${file}:${line}: ${detail}`);
  }
}

export interface CfgEntry {
  key: string;
  /** The value with trailing comment and whitespace removed. */
  value: string;
  line: number;
}

export interface CfgWarning {
  file: string;
  line: number;
  section?: string;
  key?: string;
  message: string;
  /** Kind of warning (warnings of one kind for one section type and key are reported once). */
  code?: string;
}

/** Section name aliases Darknet accepts (string_to_layer_type), mapped to the canonical name. */
export const SECTION_ALIASES: Record<string, string> = {
  network: 'net',
  conv: 'convolutional',
  conn: 'connected',
  max: 'maxpool',
  avg: 'avgpool',
  soft: 'softmax',
  local_avg: 'local_avgpool',
  lrn: 'normalization',
  silence: 'empty',
};

const INT_RE = /^[+-]?\d+$/;
const FLOAT_RE = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;

export class CfgSection {
  /** Canonical type (aliases resolved), e.g. 'convolutional'. */
  readonly type: string;
  /** The header exactly as written, e.g. '[conv]'. */
  readonly header: string;
  readonly entries: CfgEntry[] = [];
  private readonly read = new Set<string>();

  constructor(
    readonly file: string,
    readonly line: number,
    /** Position among the file's sections (0 is normally [net]). */
    readonly ordinal: number,
    rawType: string,
  ) {
    this.header = `[${rawType}]`;
    this.type = SECTION_ALIASES[rawType] ?? rawType;
  }

  get label(): string {
    return `[${this.type}]`;
  }

  /** "file:line" of the section header, or of a key's last occurrence. */
  where(key?: string): string {
    const e = key ? this.entry(key) : undefined;
    return `${this.file}:${e ? e.line : this.line}`;
  }

  has(key: string): boolean {
    return this.entries.some((e) => e.key === key);
  }

  /** The last occurrence of a key (marks it as read). */
  entry(key: string): CfgEntry | undefined {
    let found: CfgEntry | undefined;
    for (const e of this.entries) if (e.key === key) found = e;
    if (found) this.read.add(key);
    return found;
  }

  /** Every occurrence of a key, in file order. */
  all(key: string): CfgEntry[] {
    return this.entries.filter((e) => e.key === key);
  }

  /** Keys present in the section (first-occurrence order, unique). */
  keys(): string[] {
    return [...new Set(this.entries.map((e) => e.key))];
  }

  /** Keys present that no accessor has read yet. */
  unread(): string[] {
    return this.keys().filter((k) => !this.read.has(k));
  }

  /** Marks keys as consumed without reading their values. */
  markRead(...keys: string[]): void {
    for (const k of keys) this.read.add(k);
  }

  /** A CfgError at a key's line (or the header's line), prefixed with the section label and key. */
  error(key: string | undefined, message: string): CfgError {
    const e = key ? this.entry(key) : undefined;
    const line = e ? e.line : this.line;
    return new CfgError(this.file, line, key, key ? `${this.label} key '${key}': ${message}` : `${this.label} ${message}`);
  }

  private value(key: string, what: string, dflt: unknown): string | undefined {
    const e = this.entry(key);
    if (!e) {
      if (dflt === undefined) throw this.error(undefined, `needs key '${key}' (${what})`);
      return undefined;
    }
    return e.value;
  }

  int(key: string, dflt?: number): number {
    const v = this.value(key, 'an integer', dflt);
    if (v === undefined) return dflt!;
    if (!INT_RE.test(v)) throw this.error(key, `expected an integer, got '${v}'`);
    const n = Number(v);
    if (!Number.isSafeInteger(n) || Math.abs(n) > 2147483647) throw this.error(key, `integer out of range: '${v}'`);
    return n;
  }

  /** An integer with a lower bound (e.g. sizes >= 1). */
  intMin(key: string, min: number, dflt?: number): number {
    const n = this.int(key, dflt);
    if (n < min) throw this.error(key, `must be >= ${min}, got ${n}`);
    return n;
  }

  /** An integer within [min, max] (an upper bound keeps a typo from becoming a huge allocation). */
  intRange(key: string, min: number, max: number, dflt?: number): number {
    const n = this.intMin(key, min, dflt);
    if (n > max) throw this.error(key, `must be <= ${max}, got ${n}`);
    return n;
  }

  float(key: string, dflt?: number): number {
    const v = this.value(key, 'a number', dflt);
    if (v === undefined) return dflt!;
    if (!FLOAT_RE.test(v)) throw this.error(key, `expected a number, got '${v}'`);
    return Number(v);
  }

  /** 0/1 flag (any integer; non-zero is true, as in Darknet). */
  flag(key: string, dflt = false): boolean {
    return this.int(key, dflt ? 1 : 0) !== 0;
  }

  str(key: string, dflt?: string): string {
    const v = this.value(key, 'a string', dflt);
    return v === undefined ? dflt! : v;
  }

  /** One of a fixed set of words. */
  choice<T extends string>(key: string, choices: readonly T[], dflt?: T): T {
    const v = this.str(key, dflt);
    if (!choices.includes(v as T)) throw this.error(key, `expected one of ${choices.join(', ')}, got '${v}'`);
    return v as T;
  }

  private list(key: string, what: string, re: RegExp, dflt: number[] | undefined): number[] {
    const v = this.value(key, `a comma-separated list of ${what}s`, dflt);
    if (v === undefined) return dflt!;
    const parts = v.split(',');
    // A trailing comma ("1,2,") is tolerated; an empty element elsewhere is not.
    if (parts.length > 1 && parts[parts.length - 1] === '') parts.pop();
    return parts.map((p, i) => {
      if (!re.test(p)) throw this.error(key, `element ${i + 1} of '${v}': expected ${what === 'integer' ? 'an integer' : 'a number'}, got '${p}'`);
      return Number(p);
    });
  }

  intList(key: string, dflt?: number[]): number[] {
    return this.list(key, 'integer', INT_RE, dflt);
  }

  floatList(key: string, dflt?: number[]): number[] {
    return this.list(key, 'number', FLOAT_RE, dflt);
  }
}

export interface ParsedCfg {
  file: string;
  sections: CfgSection[];
  warnings: CfgWarning[];
}

/** Removes a trailing `#` / `;` comment and all whitespace (Darknet's strip()). */
function clean(line: string): string {
  const cut = line.search(/[#;]/);
  return (cut >= 0 ? line.slice(0, cut) : line).replace(/[ \t\r\n\v\f]/g, '');
}

/** Parses cfg text; `file` is the name used in messages. */
export function parseCfg(text: string, file = '<cfg>'): ParsedCfg {
  const sections: CfgSection[] = [];
  const warnings: CfgWarning[] = [];
  let cur: CfgSection | undefined;
  // a UTF-8 byte-order mark (Windows editors write one) is not part of the first line
  const lines = text.replace(/^\uFEFF/, '').split('\n');
  for (let i = 0; i < lines.length; i++) {
    const lineNo = i + 1;
    const s = clean(lines[i]);
    if (s === '') continue;
    if (s[0] === '[') {
      const m = /^\[([A-Za-z0-9_]+)\]$/.exec(s);
      if (!m) throw new CfgError(file, lineNo, undefined, `malformed section header '${lines[i].trim()}' (expected [name])`);
      cur = new CfgSection(file, lineNo, sections.length, m[1]);
      sections.push(cur);
      continue;
    }
    const eq = s.indexOf('=');
    if (eq < 0) throw new CfgError(file, lineNo, undefined, `expected key=value or [section], got '${lines[i].trim()}'`);
    const key = s.slice(0, eq);
    const value = s.slice(eq + 1);
    const raw = lines[i].replace(/[#;].*$/, '');
    const joined = /\d[ \t]+[\d.]/.exec(raw.slice(raw.indexOf('=') + 1));
    if (key === '') throw new CfgError(file, lineNo, undefined, `missing key before '=' in '${lines[i].trim()}'`);
    if (!cur) throw new CfgError(file, lineNo, key, `key '${key}' appears before the first [section]`);
    if (value === '') throw new CfgError(file, lineNo, key, `${cur.label} key '${key}' has no value`);
    const prev = cur.all(key);
    if (prev.length) {
      const p = prev[prev.length - 1];
      if (p.value !== value) {
        warnings.push({ file, line: lineNo, section: cur.type, key, message: `${cur.label} key '${key}' repeated (line ${p.line}: '${p.value}', line ${lineNo}: '${value}'); using the last (Darknet uses the first)`, code: 'repeated' });
      }
    }
    if (joined) {
      warnings.push({ file, line: lineNo, section: cur.type, key, message: `${cur.label} key '${key}': whitespace between digits ('${joined[0]}') is removed like Darknet does, joining the numbers (a missing comma?)`, code: 'joined-digits' });
    }
    cur.entries.push({ key, value, line: lineNo });
  }
  if (sections.length === 0) throw new CfgError(file, 1, undefined, 'no sections (expected [net] followed by layers)');
  return { file, sections, warnings };
}

/** Reads and parses a cfg file (messages name it as given). */
export function readCfg(path: string): ParsedCfg {
  let text: string;
  try {
    text = fs.readFileSync(path, 'utf8');
  } catch (e) {
    throw new Error(`cannot read cfg ${path}: ${(e as Error).message}`);
  }
  return parseCfg(text, path);
}
