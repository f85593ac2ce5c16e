#!/usr/bin/env node
/** The yolo-wgsl command line: yargs commands only; the work lives in the library modules. */
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { doctor } from './doctor.js';
import { BACKEND_CHOICES } from '../gpu/adapter.js';

export async function main(argv: string[]): Promise<void> {
  await yargs(argv)
    .scriptName('yolo-wgsl')
    .usage('$0 <command> [options]')
    .option('backend', {
      type: 'string',
      choices: BACKEND_CHOICES,
      describe: 'force an adapter: gpu (real GPU), lavapipe (Vulkan on the CPU), gl (OpenGL ES on llvmpipe); default auto (also YOLO_WGSL_BACKEND)',
      global: true,
    })
    .middleware((a) => {
      if (a.backend) process.env.YOLO_WGSL_BACKEND = String(a.backend);
    })
    .command(
      'doctor',
      'print the adapter, compile every kernel, run a small self-check',
      (y) => y.option('json', { type: 'string', describe: 'also write the report as JSON to this file' }),
      async (a) => {
        const r = await doctor({ backend: a.backend as string | undefined });
        if (a.json) await writeJson(a.json, r);
        if (!r.ok) process.exitCode = 1;
      },
    )
    .command(
      'demo',
      'a small forward/backward on the GPU (the bundled main job until training lands)',
      (y) => y,
      async () => {
        const { demo } = await import('./demo.js');
        await demo();
      },
    )
    .command(
      'info',
      'Darknet-style layer table of a cfg (shapes, BFLOPs) ending with Total BFLOPs',
      (y) =>
        y
          .option('cfg', { type: 'string', demandOption: true, describe: 'Darknet .cfg file' })
          .option('width', { type: 'number', describe: 'input width (default: the cfg)' })
          .option('height', { type: 'number', describe: 'input height (default: the cfg)' })
          .option('channels', { type: 'number', describe: 'input channels (default: the cfg)' })
          .option('batch', { type: 'number', describe: 'batch (default 1)' })
          .option('json', { type: 'string', describe: 'also write the table as JSON to this file' }),
      async (a) => {
        const { runInfo } = await import('./info.js');
        const info = runInfo({ cfg: a.cfg, width: a.width, height: a.height, channels: a.channels, batch: a.batch });
        if (a.json) await writeJson(a.json, info);
      },
    )
    .command(
      'detect',
      'detect objects in images: annotated PNGs, JSON per image, optional YOLO txt labels',
      (y) =>
        y
          .option('cfg', { type: 'string', demandOption: true, describe: 'Darknet .cfg file' })
          .option('weights', { type: 'string', describe: 'Darknet .weights (default: seeded random weights, for trying the pipeline)' })
          .option('names', { type: 'string', describe: 'class names file, one per line (e.g. coco.names)' })
          .option('source', { type: 'string', demandOption: true, describe: 'an image (PNG/JPEG), a folder of images, or a .txt list of image paths' })
          .option('conf', { type: 'number', default: 0.25, describe: 'objectness × class score threshold' })
          .option('iou', { type: 'number', default: 0.45, describe: 'NMS IoU threshold' })
          .option('out', { type: 'string', default: 'runs/detect', describe: 'output folder' })
          .option('save-txt', { type: 'boolean', default: false, describe: 'also write labels/<image>.txt (class cx cy w h score)' })
          .option('agnostic', { type: 'boolean', default: false, describe: 'class-agnostic NMS' })
          .option('letterbox', { type: 'boolean', describe: 'letterbox (keep aspect) instead of the cfg default (letter_box)' })
          .option('nms-kind', { type: 'string', choices: ['default', 'greedynms', 'diounms'], describe: "override the cfg's nms_kind" })
          .option('max-det', { type: 'number', default: 1000, describe: 'detections kept per image' })
          .option('batch', { type: 'number', default: 1, describe: 'images per forward' }),
      async (a) => {
        const { detect } = await import('./detect.js');
        await detect({
          cfg: a.cfg, weights: a.weights, names: a.names, source: a.source, conf: a.conf, iou: a.iou, out: a.out,
          saveTxt: a['save-txt'], agnostic: a.agnostic, letterbox: a.letterbox, nmsKind: a['nms-kind'], maxDet: a['max-det'],
          batch: a.batch, log: (l: string) => console.log(l),
        });
      },
    )
    .command(
      'forward',
      'run a network and write NumPy files: layer_<i>_input.npy per detection head (and every layer with --layers all)',
      (y) =>
        y
          .option('cfg', { type: 'string', demandOption: true, describe: 'Darknet .cfg file' })
          .option('weights', { type: 'string', describe: 'Darknet .weights (default: seeded random weights)' })
          .option('input', { type: 'string', demandOption: true, describe: 'an image, or an .npy NCHW float32 tensor used exactly as given' })
          .option('out', { type: 'string', demandOption: true, describe: 'output folder' })
          .option('layers', { type: 'string', choices: ['heads', 'all'], default: 'heads', describe: 'all: also every layer output as layer_<i>.npy' })
          .option('letterbox', { type: 'boolean', describe: 'for image input: letterbox instead of the cfg default' }),
      async (a) => {
        const { runForward } = await import('./forward.js');
        await runForward({ cfg: a.cfg, weights: a.weights, input: a.input, out: a.out, layers: a.layers as 'heads' | 'all', letterbox: a.letterbox });
      },
    )
    .command('bench <what>', 'benchmarks (bench kernels: conv2d variants vs the device matmul ceiling)', (y) =>
      y
        .positional('what', { choices: ['kernels'] as const, describe: 'what to benchmark' })
        .option('size', { type: 'number', default: 416, describe: 'network input size the conv shapes derive from' })
        .option('iters', { type: 'number', describe: 'timed repetitions per measurement' })
        .option('json', { type: 'string', describe: 'write the results as JSON to this file' }),
      async (a) => {
        const { runBenchKernels } = await import('./bench.js');
        await runBenchKernels({ size: a.size, iters: a.iters, json: a.json });
      },
    )
    .demandCommand(1, 'name a command (see --help)')
    .strict()
    .recommendCommands()
    .fail((msg, err, y) => {
      if (err) throw err;
      console.error(y.help() && msg);
      process.exit(2);
    })
    .help()
    .parseAsync();
}

async function writeJson(file: string, data: unknown): Promise<void> {
  const { writeFileAtomic } = await import('../util/fs.js');
  writeFileAtomic(file, JSON.stringify(data, null, 2) + '\n');
}

const isMain = process.argv[1] && import.meta.url.endsWith(process.argv[1].replace(/\\/g, '/').split('/').pop()!);
if (isMain) {
  main(hideBin(process.argv)).catch((e: unknown) => {
    const err = e as Error;
    console.error(`yolo-wgsl: ${err.name && err.name !== 'Error' ? `${err.name}: ` : ''}${err.message}`);
    if (process.env.YOLO_WGSL_DEBUG === '1') console.error(err.stack);
    process.exit(1);
  });
}
