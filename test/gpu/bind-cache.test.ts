import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { BindGroupCache } from '../../src/gpu/bind-cache.js';

// The cache only compares identities: plain objects stand in for Dawn's layouts, buffers and bind groups.
const layout = () => ({}) as GPUBindGroupLayout;
const buffer = () => ({}) as GPUBuffer;

test('bind group cache: one entry per layout, slot and binding (buffer identity, offset, size)', () => {
  const c = new BindGroupCache();
  let made = 0;
  const make = () => ({ n: ++made }) as unknown as GPUBindGroup;
  const [l1, l2] = [layout(), layout()];
  const [x, y] = [buffer(), buffer()];
  const first = c.get(l1, 0, [[1, { buffer: x }], [2, { buffer: y }]], make);
  assert.is(c.get(l1, 0, [[1, { buffer: x }], [2, { buffer: y }]], make), first);
  assert.is(made, 1);
  const variants: [GPUBindGroupLayout, number, [number, { buffer: GPUBuffer; offset?: number; size?: number }][]][] = [
    [l2, 0, [[1, { buffer: x }], [2, { buffer: y }]]], // another kernel
    [l1, 1, [[1, { buffer: x }], [2, { buffer: y }]]], // another uniform slot
    [l1, 0, [[1, { buffer: y }], [2, { buffer: x }]]], // buffers swapped
    [l1, 0, [[1, { buffer: x }], [3, { buffer: y }]]], // another binding number
    [l1, 0, [[1, { buffer: x, offset: 256, size: 64 }], [2, { buffer: y }]]], // a view
    [l1, 0, [[1, { buffer: x, offset: 256, size: 128 }], [2, { buffer: y }]]], // a longer view
    [l1, 0, [[1, { buffer: buffer() }], [2, { buffer: y }]]], // a new buffer
  ];
  for (const [l, slot, b] of variants) c.get(l, slot, b, make);
  assert.is(made, 1 + variants.length, 'each variant made its own bind group');
  assert.is(c.misses, made);
  assert.is(c.hits, 1);
});

test('bind group cache: past its cap it starts over', () => {
  const c = new BindGroupCache(2);
  let made = 0;
  const make = () => ({ n: ++made }) as unknown as GPUBindGroup;
  const l = layout();
  const bufs = [buffer(), buffer(), buffer()];
  for (const b of bufs) c.get(l, 0, [[1, { buffer: b }]], make);
  assert.is(made, 3);
  c.get(l, 0, [[1, { buffer: bufs[2] }]], make); // kept: it was added after the clear
  assert.is(made, 3);
  c.get(l, 0, [[1, { buffer: bufs[0] }]], make); // dropped by the clear
  assert.is(made, 4);
});

test('bind group cache: a new epoch (the pool created a buffer) starts over', () => {
  const c = new BindGroupCache();
  let made = 0;
  const make = () => ({ n: ++made }) as unknown as GPUBindGroup;
  const l = layout();
  const b = buffer();
  c.epoch(3);
  c.get(l, 0, [[1, { buffer: b }]], make);
  c.epoch(3);
  c.get(l, 0, [[1, { buffer: b }]], make);
  assert.is(made, 1, 'the same epoch keeps the entry');
  c.epoch(4);
  c.get(l, 0, [[1, { buffer: b }]], make);
  assert.is(made, 2, 'a new epoch dropped it');
});

test.run();
