/** The cfg parser (syntax, typed accessors, their file:line messages) and the builder's cfg errors. */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { CfgError, parseCfg } from '../../src/darknet/cfg.js';
import { Network } from '../../src/darknet/network.js';
import { ACTIVATIONS } from '../../src/tensor/ops/act_codes.js';

/** Asserts fn throws a CfgError whose message is exactly `msg` (and whose fields match). */
function throwsCfg(fn: () => unknown, msg: string, line?: number, key?: string): void {
  try {
    fn();
  } catch (e) {
    assert.instance(e, CfgError, `expected a CfgError, got ${(e as Error).message}`);
    assert.is((e as Error).message, msg);
    if (line !== undefined) assert.is((e as CfgError).line, line);
    if (key !== undefined) assert.is((e as CfgError).key, key);
    return;
  }
  assert.unreachable(`expected CfgError: ${msg}`);
}

const build = (text: string, file = 't.cfg') => Network.build(parseCfg(text, file));

test('syntax: comments, trailing comments, whitespace, CRLF, aliases, repeated keys', () => {
  const text = [
    '# a comment',
    '; another',
    '[network]  # trailing',
    ' width = 64 ',
    'height=32 ; trailing',
    'channels=3',
    '',
    '[conv]\r',
    'filters = 8  # eight',
    'size=3',
    'anchors = 10,13,  16,30',
    'size=5',
  ].join('\n');
  const p = parseCfg(text, 'x.cfg');
  assert.is(p.sections.length, 2);
  const [net, conv] = p.sections;
  assert.is(net.type, 'net');
  assert.is(net.header, '[network]');
  assert.is(net.line, 3);
  assert.is(net.int('width'), 64);
  assert.is(net.int('height'), 32);
  assert.is(conv.type, 'convolutional');
  assert.is(conv.int('filters'), 8);
  assert.equal(conv.intList('anchors'), [10, 13, 16, 30]);
  // repeated: last wins, all kept, one warning naming both lines
  assert.is(conv.int('size'), 5);
  assert.equal(conv.all('size').map((e) => [e.line, e.value]), [[10, '3'], [12, '5']]);
  assert.is(conv.where('size'), 'x.cfg:12');
  assert.is(p.warnings.length, 1);
  assert.match(p.warnings[0].message, "[convolutional] key 'size' repeated (line 10: '3', line 12: '5'); using the last (Darknet uses the first)");
  assert.is(p.warnings[0].line, 12);
});

test('accessors: defaults, ints, floats, lists, choices, flags', () => {
  const p = parseCfg('[yolo]\nclasses=80\njitter=.3\nscale_x_y = 1.05\nmask = 3,4,5\nanchors=1.5,2,3e1,\nnms_kind=greedynms\nnew_coords=1\n', 'y.cfg');
  const s = p.sections[0];
  assert.is(s.int('classes'), 80);
  assert.is(s.int('num', 1), 1);
  assert.is(s.float('jitter'), 0.3);
  assert.is(s.float('scale_x_y'), 1.05);
  assert.equal(s.intList('mask'), [3, 4, 5]);
  assert.equal(s.floatList('anchors'), [1.5, 2, 30]);
  assert.is(s.choice('nms_kind', ['default', 'greedynms', 'diounms']), 'greedynms');
  assert.is(s.flag('new_coords'), true);
  assert.is(s.flag('focal_loss'), false);
  assert.equal(s.unread(), []);
});

test('accessor errors name file:line, the section and the key', () => {
  const text = '[net]\nwidth=32\nheight=32\nchannels=3\n[convolutional]\nfilters=16\nsize=x\nstride=1.5\npad=1\nactivation=leaky\n';
  const s = parseCfg(text, 'yolov3.cfg').sections[1];
  throwsCfg(() => s.int('size'), "yolov3.cfg:7: [convolutional] key 'size': expected an integer, got 'x'", 7, 'size');
  throwsCfg(() => s.int('stride'), "yolov3.cfg:8: [convolutional] key 'stride': expected an integer, got '1.5'", 8, 'stride');
  throwsCfg(() => s.float('activation'), "yolov3.cfg:10: [convolutional] key 'activation': expected a number, got 'leaky'");
  throwsCfg(() => s.int('groups'), "yolov3.cfg:5: [convolutional] needs key 'groups' (an integer)", 5);
  throwsCfg(() => s.intMin('filters', 32), "yolov3.cfg:6: [convolutional] key 'filters': must be >= 32, got 16");
  const l = parseCfg('[route]\nlayers = -1, x, 3\n', 'r.cfg').sections[0];
  throwsCfg(() => l.intList('layers'), "r.cfg:2: [route] key 'layers': element 2 of '-1,x,3': expected an integer, got 'x'");
  const c = parseCfg('[yolo]\nnms_kind=fastnms\n', 'c.cfg').sections[0];
  throwsCfg(() => c.choice('nms_kind', ['default', 'greedynms']), "c.cfg:2: [yolo] key 'nms_kind': expected one of default, greedynms, got 'fastnms'");
  // the whole network build surfaces the same message
  throwsCfg(() => build(text, 'yolov3.cfg'), "yolov3.cfg:7: [convolutional] key 'size': expected an integer, got 'x'");
});

test('malformed lines', () => {
  throwsCfg(() => parseCfg('[net]\nwidth 32\n', 'm.cfg'), "m.cfg:2: expected key=value or [section], got 'width 32'", 2);
  throwsCfg(() => parseCfg('width=32\n[net]\n', 'm.cfg'), "m.cfg:1: key 'width' appears before the first [section]", 1);
  throwsCfg(() => parseCfg('[net]\nwidth=\n', 'm.cfg'), "m.cfg:2: [net] key 'width' has no value", 2);
  throwsCfg(() => parseCfg('[net\nwidth=3\n', 'm.cfg'), "m.cfg:1: malformed section header '[net' (expected [name])", 1);
  throwsCfg(() => parseCfg('# nothing\n', 'm.cfg'), 'm.cfg:1: no sections (expected [net] followed by layers)');
});

const NET = '[net]\nwidth=32\nheight=32\nchannels=3\n';

test('builder errors: sections, references, shapes, activations', () => {
  throwsCfg(() => build('[convolutional]\nfilters=4\n'), 't.cfg:1: the first section must be [net] or [network], got [convolutional]');
  throwsCfg(() => build(`${NET}[frobnicate]\nx=1\n`), 't.cfg:5: [frobnicate] (layer 0) is not a Darknet layer type (Darknet: "Type not recognized")', 5);
  throwsCfg(() => build(`${NET}[convolutional]\nfilters=4\nactivation=leaky\n[conv_lstm]\noutput=3\n`), 't.cfg:8: [conv_lstm] (layer 1) is not supported: convolutional LSTM layers ([conv_lstm])', 8);
  throwsCfg(() => build(`${NET}[convolutional]\nfilters=4\nactivation=leaky\n[route]\nlayers=-2\n`),
    "t.cfg:9: [route] key 'layers': layer -2 (= -1) is out of range: this is layer 1, it can refer to layers 0..0", 9, 'layers');
  throwsCfg(() => build(`${NET}[convolutional]\nfilters=4\nactivation=leaky\n[route]\nlayers=1\n`),
    "t.cfg:9: [route] key 'layers': layer 1 is out of range: this is layer 1, it can refer to layers 0..0");
  throwsCfg(() => build(`${NET}[convolutional]\nfilters=4\nactivation=leaky\n[maxpool]\nsize=2\nstride=2\n[route]\nlayers=-1,-2\n`),
    "t.cfg:12: [route] key 'layers': inputs have different sizes: layer 1 outputs 16 x 16 x 4, layer 0 outputs 32 x 32 x 4");
  // the supported list is the activation table (a new activation changes it, not this test)
  throwsCfg(() => build(`${NET}[convolutional]\nfilters=4\nactivation=elu\n`),
    `t.cfg:7: [convolutional] key 'activation': activation 'elu' is not supported (supported: ${ACTIVATIONS.join(', ')})`);
  throwsCfg(() => build(`${NET}[convolutional]\nfilters=4\nactivation=lekay\n`),
    `t.cfg:7: [convolutional] key 'activation': unknown activation 'lekay' (Darknet would silently use relu; supported: ${ACTIVATIONS.join(', ')})`);
  throwsCfg(() => build(`${NET}[convolutional]\ncbn=1\nfilters=4\nactivation=leaky\n`),
    "t.cfg:6: [convolutional] key 'cbn': cross-batch normalization (cbn) is not supported (cbn=1)");
  throwsCfg(() => build(`${NET}[convolutional]\nfilters=20\nsize=1\nactivation=linear\n[yolo]\nmask=0,1\nanchors=1,2,3,4\nnum=2\nclasses=4\n`),
    't.cfg:9: [yolo] expects 2 anchors x (5 + 4 classes) = 18 input channels, the previous layer outputs 20 (set filters=18 in the [convolutional] before it)');
  throwsCfg(() => build(`${NET}[convolutional]\nfilters=18\nsize=1\nactivation=linear\n[yolo]\nmask=0,5\nanchors=1,2,3,4\nnum=2\nclasses=4\n`),
    "t.cfg:10: [yolo] key 'mask': anchor index 5 is outside 0..1 (num=2) and the anchors list has only 2 pairs");
  throwsCfg(() => build(`${NET}[convolutional]\nfilters=6\ngroups=4\nactivation=leaky\n`), "t.cfg:7: [convolutional] key 'groups': 3 input channels are not divisible by groups=4");
  throwsCfg(() => build(`${NET}[convolutional]\nfilters=4\nsize=35\nactivation=leaky\n`), "t.cfg:7: [convolutional] key 'size': a 35x35 kernel with padding 0 does not fit the 32 x 32 input");
  throwsCfg(() => build(`${NET}[convolutional]\nfilters=4\nactivation=leaky\n[softmax]\n[convolutional]\nfilters=2\nactivation=leaky\n`),
    't.cfg:9: [convolutional] needs an image input, but layer 1 [softmax] outputs a flat vector of 4096 values');
  throwsCfg(() => build(`${NET}[shortcut]\nfrom=-1\n`), "t.cfg:6: [shortcut] key 'from': layer -1 (= -1) is out of range: this is layer 0, it can refer to layers 0..-1");
  throwsCfg(() => build('[net]\nbatch=1\n[convolutional]\nfilters=2\n'), 't.cfg:1: [net] needs width, height and channels (or inputs)');
});

test('warnings: harmless and unknown keys reported once, Darknet defaults', () => {
  const text = `${NET}[convolutional]\nfilters=4\nstream=1\nfoo=2\n[convolutional]\nfilters=4\nstream=1\nfoo=3\n`;
  const net = build(text);
  const msgs = net.warnings.map((w) => `${w.file}:${w.line}: ${w.message}`);
  assert.equal(msgs, [
    "t.cfg:5: [convolutional] no activation= given: Darknet's default is logistic (OpenCV DNN would use linear) (2 times; first here)",
    "t.cfg:7: [convolutional] key 'stream' has no effect here (CUDA stream selection); ignored (2 times; first here)",
    "t.cfg:8: [convolutional] key 'foo' is unknown (Darknet ignores it too) (2 times; first here)",
  ]);
  assert.is((net.layers[0] as unknown as { activation: string }).activation, 'logistic');
});

test('shapes: conv pad/stride, maxpool size 2 stride 1, route groups, upsample, shortcut', () => {
  const text = `${NET}
[convolutional]
filters=8
size=3
stride=2
pad=1
activation=leaky
[maxpool]
size=2
stride=1
[convolutional]
filters=6
size=1
stride_x=1
stride_y=2
activation=linear
[route]
layers=-2
groups=2
group_id=1
[upsample]
stride=2
[maxpool]
size=2
stride=2
[route]
layers=1,-1
[shortcut]
from=0
activation=leaky
`;
  const net = build(text);
  const shapes = net.layers.map((l) => `${l.kind} ${l.output.w}x${l.output.h}x${l.output.c}`);
  assert.equal(shapes, [
    'convolutional 16x16x8', 'maxpool 16x16x8', 'convolutional 16x8x6', 'route 16x16x4', 'upsample 32x32x4', 'maxpool 16x16x4', 'route 16x16x12', 'shortcut 16x16x12',
  ]);
  assert.equal(net.layers[6].sources, [1, 5]);
  assert.equal(net.layers[7].sources, [6, 0]);
  assert.equal(net.outputLayers(), [7]);
});

test.run();
