/**
 * Numeric settings checked in one place: the CLI (every numeric option, src/cli/options.ts) and the library
 * API (train settings, detect options) use the same rules, so `--conf abc` or `maxBatches: -3` is an error
 * naming the setting and its range, never NaN flowing into a run (NaN compares false: `score > NaN` keeps
 * nothing, `iteration < NaN` never ends).
 */

export interface NumberRule {
  /** Smallest allowed value (inclusive unless `above`). */
  min?: number;
  /** The value must be greater than `min`, not equal. */
  above?: boolean;
  max?: number;
  int?: boolean;
}

/** An option or setting out of its range; `setting` names it as the caller wrote it (e.g. `--conf`). */
export class SettingError extends RangeError {
  override name = 'SettingError';
  constructor(readonly setting: string, message: string) {
    super(message);
  }
}

/** "an integer >= 1", "a number in [0, 1]", ... */
export function describeRule(r: NumberRule): string {
  const what = r.int ? 'an integer' : 'a number';
  if (r.min !== undefined && r.max !== undefined) return `${what} in ${r.above ? '(' : '['}${r.min}, ${r.max}]`;
  if (r.min !== undefined) return `${what} ${r.above ? '>' : '>='} ${r.min}`;
  if (r.max !== undefined) return `${what} <= ${r.max}`;
  return what;
}

/** Why `v` breaks `r` (null when it is fine). */
export function ruleViolation(v: unknown, r: NumberRule): string | null {
  if (typeof v !== 'number' || !Number.isFinite(v)) return `expected ${describeRule(r)}`;
  if (r.int && !Number.isInteger(v)) return `expected ${describeRule(r)}`;
  if (r.min !== undefined && (r.above ? v <= r.min : v < r.min)) return `expected ${describeRule(r)}`;
  if (r.max !== undefined && v > r.max) return `expected ${describeRule(r)}`;
  return null;
}

/** Returns `v` when it keeps `r`, else throws a SettingError: "<name>: expected ..., got <shown>". */
export function checkNumber(name: string, v: unknown, r: NumberRule, shown: unknown = v): number {
  const why = ruleViolation(v, r);
  if (why) throw new SettingError(name, `${name}: ${why}, got ${typeof shown === 'string' ? `'${shown}'` : String(shown)}`);
  return v as number;
}

/** checkNumber for an optional setting (undefined passes through). */
export function checkOptional(name: string, v: number | undefined, r: NumberRule): number | undefined {
  return v === undefined ? undefined : checkNumber(name, v, r);
}

/** Upper bounds of classes and anchors (cfg heads, datasets): far above real ones (YOLO9000: 9418 classes), far below a typo. */
export const MAX_CLASSES = 100_000;
export const MAX_ANCHORS = 1024;

/** Rules shared by the CLI and the API. */
export const RULES = {
  probability: { min: 0, max: 1 },
  positiveInt: { min: 1, int: true },
  count: { min: 0, int: true },
  positive: { min: 0, above: true },
  size: { min: 1, max: 16384, int: true },
  seed: { min: 0, max: 2 ** 32 - 1, int: true },
} as const satisfies Record<string, NumberRule>;

/** Index of the first NaN or infinity in `a`, -1 when every value is finite. */
export function firstNonFinite(a: ArrayLike<number>): number {
  for (let i = 0; i < a.length; i++) if (!Number.isFinite(a[i])) return i;
  return -1;
}
