/**
 * The range of every numeric command-line option, in one table (a new numeric option is one line here).
 * yargs turns `--conf abc` into NaN; `checkNumericOptions` refuses it, and anything out of range, before a
 * command runs, naming the option, its range and what was given.
 */
import { checkNumber, RULES, type NumberRule } from '../util/validate.js';
import { PORT_RULE, SERVE_LIMIT_RULES } from '../serve/limits.js';

export const NUMERIC_OPTIONS: Readonly<Record<string, NumberRule>> = {
  conf: RULES.probability,
  iou: RULES.probability,
  'max-det': { min: 1, max: 1_000_000, int: true },
  batch: RULES.positiveInt,
  subdivisions: RULES.positiveInt,
  img: RULES.size,
  width: RULES.size,
  height: RULES.size,
  channels: { min: 1, max: 4096, int: true },
  size: RULES.size,
  'train-size': RULES.size,
  epochs: RULES.positiveInt,
  'max-batches': RULES.positiveInt,
  freeze: RULES.count,
  lr: RULES.positive,
  seed: RULES.seed,
  workers: { min: 0, max: 256, int: true },
  'val-every': RULES.count,
  'save-every': RULES.positiveInt,
  'keep-every': RULES.count,
  'log-every': RULES.positiveInt,
  'train-count': RULES.positiveInt,
  'val-count': RULES.positiveInt,
  'category-offset': { int: true },
  num: { min: 1, max: 1000, int: true },
  iters: RULES.positiveInt,
  'min-iters': RULES.positiveInt,
  budget: RULES.positive,
  'min-seconds': { min: 0 },
  tolerance: RULES.positive,
  'max-pixels': RULES.positiveInt,
  'val-fraction': RULES.probability,
  'max-warnings': RULES.count,
  port: PORT_RULE,
  'max-bytes': SERVE_LIMIT_RULES.maxBytes,
  'max-batch': SERVE_LIMIT_RULES.maxBatch,
  'batch-wait-ms': SERVE_LIMIT_RULES.batchWaitMs,
  'max-concurrent': SERVE_LIMIT_RULES.maxConcurrent,
  'max-queue': SERVE_LIMIT_RULES.maxQueue,
  'timeout-ms': SERVE_LIMIT_RULES.timeoutMs,
};

/**
 * Numeric options of one command whose name another command uses for text (`forward --layers heads|all`):
 * checked for that command only, by the same rules.
 */
export const COMMAND_NUMERIC_OPTIONS: Readonly<Record<string, Readonly<Record<string, NumberRule>>>> = {
  partial: { layers: RULES.count },
};

/** The text given for `--name` in the raw arguments (`--name v` or `--name=v`; the last one wins). */
function rawValue(args: readonly string[], name: string): string | undefined {
  let v: string | undefined;
  for (let i = 0; i < args.length; i++) {
    if (args[i] === `--${name}`) v = args[i + 1];
    else if (args[i].startsWith(`--${name}=`)) v = args[i].slice(name.length + 3);
  }
  return v;
}

/** Throws a SettingError for the first numeric option that is not a number in its range. */
export function checkNumericOptions(argv: Record<string, unknown>, args: readonly string[]): void {
  const command = Array.isArray(argv._) ? String(argv._[0]) : '';
  for (const [name, rule] of [...Object.entries(NUMERIC_OPTIONS), ...Object.entries(Object.hasOwn(COMMAND_NUMERIC_OPTIONS, command) ? COMMAND_NUMERIC_OPTIONS[command] : {})]) {
    const v = argv[name];
    if (v === undefined) continue;
    // an option given twice arrives as an array: the last one wins, as yargs' other options
    const last = Array.isArray(v) ? v[v.length - 1] : v;
    checkNumber(`--${name}`, last, rule, rawValue(args, name) ?? last);
  }
}
