/**
 * src/gpu/poll.ts: the global setImmediate wrapper that throttles Dawn's native polling callbacks and lets
 * JavaScript callbacks through untouched.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { parsePollMode, restoreDawnPolling, throttleDawnPolling } from '../../src/gpu/poll.js';

const isImmediate = (h: unknown) => h !== null && typeof h === 'object' && h.constructor.name === 'Immediate';
const isTimeout = (h: unknown) => h !== null && typeof h === 'object' && h.constructor.name === 'Timeout';

test('poll: native callbacks run immediately during the first spinMs of a wait, then once per timer tick; JS callbacks always immediately', async () => {
  const wasInstalled = throttleDawnPolling('spin');
  restoreDawnPolling();
  try {
    const original = globalThis.setImmediate;
    assert.ok(throttleDawnPolling('throttled', 0));
    assert.is.not(globalThis.setImmediate, original);
    // a native function stands in for Dawn's tick (a Napi function: its source reads [native code])
    const native = Date.now;
    const h1 = setImmediate(native);
    assert.ok(isTimeout(h1), 'native callback after spinMs 0: a timer');
    clearTimeout(h1 as unknown as NodeJS.Timeout);
    let ran = false;
    const h2 = setImmediate(() => { ran = true; });
    assert.ok(isImmediate(h2), 'a JavaScript callback stays an immediate');
    await new Promise((r) => original(r));
    assert.ok(ran);
    // util.promisify(setImmediate) keeps working
    const { promisify } = await import('node:util');
    assert.is(await promisify(setImmediate)(7), 7);
    restoreDawnPolling();
    assert.is(globalThis.setImmediate, original);
    // with a spin window, the first native poll of a wait is an immediate
    throttleDawnPolling('throttled', 50);
    const h3 = setImmediate(native);
    assert.ok(isImmediate(h3), 'inside the spin window: an immediate');
    clearImmediate(h3);
  } finally {
    restoreDawnPolling();
    if (wasInstalled) throttleDawnPolling('throttled');
  }
});

test('poll: YOLO_WGSL_POLL values', () => {
  assert.is(parsePollMode(undefined), 'throttled');
  assert.is(parsePollMode('spin'), 'spin');
  assert.throws(() => parsePollMode('fast'), /YOLO_WGSL_POLL must be 'throttled' or 'spin', got 'fast'/);
});

test.run();
