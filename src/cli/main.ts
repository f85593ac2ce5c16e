#!/usr/bin/env node
/** The yolo-wgsl command line: yargs commands only; the work lives in the library modules. */
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { doctor } from './doctor.js';
import { BACKEND_CHOICES } from '../gpu/adapter.js';
import { checkNumericOptions } from './options.js';
import { SettingError } from '../util/validate.js';

/** A command line that cannot run as given (exit code 2, like the option errors yargs reports). */
export class UsageError extends Error {
  override name = 'UsageError';
}

export async function main(argv: string[]): Promise<void> {
  await yargs(argv)
    .scriptName('yolo-wgsl')
    .usage('$0 <command> [options]')
    .option('backend', {
      type: 'string',
      choices: BACKEND_CHOICES,
      describe: 'force an adapter: gpu (real GPU), lavapipe (Vulkan on the CPU), gl (OpenGL ES on llvmpipe), swiftshader (Vulkan on the CPU, 4-lane subgroups; only when asked); default auto (also YOLO_WGSL_BACKEND)',
      global: true,
    })
    .option('max-pixels', {
      type: 'number',
      describe: 'refuse images whose header declares more pixels than this, before decoding (default 64 megapixels; also YOLO_WGSL_MAX_PIXELS)',
      global: true,
    })
    .option('verbose', { type: 'boolean', describe: 'on an error, also print its stack trace (also YOLO_WGSL_VERBOSE=1)', global: true })
    .middleware((a) => {
      if (a.backend) process.env.YOLO_WGSL_BACKEND = String(a.backend);
    })
    .check((a) => {
      checkNumericOptions(a, argv);
      // after the check: the loaders (and their worker threads) read the limit from the environment
      if (a['max-pixels'] !== undefined) process.env.YOLO_WGSL_MAX_PIXELS = String(a['max-pixels']);
      return true;
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
      'setup-mesa',
      'install Mesa 25 lavapipe (Vulkan on the CPU, 3-6x faster than the GL fallback) for machines without a GPU: Debian packages unpacked into a folder, nothing system-wide',
      (y) => y.option('dir', { type: 'string', describe: 'where to install (default: $YOLO_WGSL_MESA, the checkout\'s .mesa/, or ~/.cache/yolo-wgsl/mesa for an installed package)' }),
      async (a) => {
        const { setupMesa } = await import('./setup-mesa.js');
        if (!(await setupMesa({ dir: a.dir as string | undefined }))) process.exitCode = 1;
      },
    )
    .command(
      'tune',
      'measure every conv algorithm on every conv shape of a cfg on this adapter; the fastest is cached per adapter and used by `auto`',
      (y) =>
        y
          .option('cfg', { type: 'string', demandOption: true, describe: 'Darknet .cfg file' })
          .option('img', { type: 'number', describe: 'input size (width = height; default: the cfg)' })
          .option('batch', { type: 'number', default: 1, describe: 'batch size to tune for' })
          .option('train', { type: 'boolean', default: false, describe: 'also the backward passes (training)' })
          .option('force', { type: 'boolean', default: false, describe: 're-measure cached shapes' })
          .option('defaults', { type: 'boolean', default: false, describe: 'also write kernels/tune/<adapter kind>.json (shipped defaults)' }),
      async (a) => {
        const { runTune } = await import('./tune.js');
        await runTune({ cfg: a.cfg, img: a.img, batch: a.batch, train: a.train, force: a.force, defaults: a.defaults, backend: a.backend as string | undefined });
      },
    )
    .command(
      'demo',
      'the bundled main job: generate synthetic shapes, train from scratch, validate, draw detections, print mAP@0.5',
      (y) =>
        y
          .option('out', { type: 'string', describe: 'output folder (default runs/demo)' })
          .option('data', { type: 'string', describe: 'where the synthetic dataset is generated (default data/synth)' })
          .option('cfg', { type: 'string', describe: 'cfg to train (default fixtures/cfg/demo.cfg)' })
          .option('train-count', { type: 'number', describe: 'synthetic train images' })
          .option('val-count', { type: 'number', describe: 'synthetic val images' })
          .option('size', { type: 'number', describe: 'synthetic image size in pixels' })
          .option('difficulty', { type: 'string', choices: ['easy', 'standard', 'hard'], describe: 'synthetic dataset difficulty (default standard; docs/data.md)' })
          .option('img', { type: 'number', describe: 'network input size' })
          .option('max-batches', { type: 'number', describe: 'training iterations' })
          .option('batch', { type: 'number', describe: 'images per update' })
          .option('loss', { type: 'string', choices: ['darknet', 'yolov5'], describe: 'loss semantics (default yolov5)' })
          .option('seed', { type: 'number' })
          .option('workers', { type: 'number', describe: 'data loader worker threads' }),
      async (a) => {
        const { demo } = await import('./demo.js');
        await demo({
          out: a.out, data: a.data, cfg: a.cfg, trainCount: a['train-count'], valCount: a['val-count'], size: a.size, difficulty: a.difficulty as 'standard' | undefined, img: a.img,
          maxBatches: a['max-batches'], batch: a.batch, loss: a.loss as 'yolov5' | undefined, seed: a.seed, workers: a.workers,
        });
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
          .option('batch', { type: 'number', default: 1, describe: 'images per forward' })
          .option('img', { type: 'number', describe: 'network input size (default: the cfg width/height)' })
          .option('precision', { type: 'string', choices: ['auto', 'f32', 'f16'], default: 'auto', describe: 'inference precision: f16 (weights and activations in float16, sums in float32; needs shader-f16), f32 (the direct float32 kernels), or auto (f16 only where `tune` measured it faster on this adapter; the large 3x3 convs as Winograd)' }),
      async (a) => {
        const { detect } = await import('./detect.js');
        const r = await detect({
          cfg: a.cfg, weights: a.weights, names: a.names, source: a.source, conf: a.conf, iou: a.iou, out: a.out,
          saveTxt: a['save-txt'], agnostic: a.agnostic, letterbox: a.letterbox, nmsKind: a['nms-kind'], maxDet: a['max-det'],
          batch: a.batch, img: a.img, precision: a.precision as 'auto', log: (l: string) => console.log(l),
        });
        // images that could not run were skipped with a warning each and counted in the summary line
        if (r.skipped.length) process.exitCode = 1;
      },
    )
    .command(
      'serve',
      'an HTTP detection server: POST an image (raw or multipart) to /detect, get detect\'s JSON; GET /health, /metrics; concurrent requests batched into one forward (docs/serve.md)',
      (y) =>
        y
          .option('cfg', { type: 'string', demandOption: true, describe: 'Darknet .cfg file' })
          .option('weights', { type: 'string', describe: 'Darknet .weights (default: seeded random weights, for trying the server)' })
          .option('names', { type: 'string', describe: 'class names file, one per line (e.g. coco.names)' })
          .option('port', { type: 'number', default: 8080, describe: 'TCP port (0: a free one, printed)' })
          .option('host', { type: 'string', default: '127.0.0.1', describe: 'address to listen on (0.0.0.0: every interface)' })
          .option('img', { type: 'number', describe: 'network input size (default: the cfg width/height)' })
          .option('precision', { type: 'string', choices: ['auto', 'f32', 'f16'], default: 'auto', describe: 'inference precision: f16 (weights and activations in float16, sums in float32; needs shader-f16), f32 (the direct float32 kernels), or auto (f16 only where `tune` measured it faster on this adapter; the large 3x3 convs as Winograd)' })
          .option('max-bytes', { type: 'number', default: 8 * 2 ** 20, describe: 'largest request body in bytes (413 past it)' })
          .option('max-batch', { type: 'number', default: 8, describe: 'requests per batch: one forward' })
          .option('batch-wait-ms', { type: 'number', default: 5, describe: 'how long the oldest queued request waits for others to join its batch' })
          .option('max-concurrent', { type: 'number', default: 1, describe: 'batches decoded and run at once' })
          .option('max-queue', { type: 'number', default: 64, describe: 'requests waiting beyond those running; past it 503 at once' })
          .option('timeout-ms', { type: 'number', default: 30000, describe: 'time limit of a request from its arrival (408 body, 503 queued, 504 running)' }),
      async (a) => {
        const { runServe } = await import('./serve.js');
        await runServe({
          cfg: a.cfg, weights: a.weights, names: a.names, port: a.port, host: a.host, img: a.img, precision: a.precision as 'auto', maxBytes: a['max-bytes'], maxBatch: a['max-batch'],
          batchWaitMs: a['batch-wait-ms'], maxConcurrent: a['max-concurrent'], maxQueue: a['max-queue'], timeoutMs: a['timeout-ms'],
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
    .command(
      'train',
      'train a Darknet cfg on a dataset (.data or .yaml): Darknet .weights checkpoints (last, best), results.csv, plots',
      (y) =>
        y
          .option('cfg', { type: 'string', describe: 'Darknet .cfg (required unless --resume)' })
          .option('data', { type: 'string', describe: 'dataset: Darknet .data or Ultralytics .yaml (required unless --resume)' })
          .option('weights', { type: 'string', describe: 'initial .weights (default: seeded initialization); a cut file (Darknet\'s partial, e.g. yolov4-tiny.conv.29) loads the layers it holds, the rest start from the seeded initialization' })
          .option('weights-cfg', { type: 'string', describe: 'the cfg the --weights were made with, when it differs from --cfg (another class count): transfer every layer whose kind and shapes match, re-initialise the rest' })
          .option('clear', { type: 'boolean', describe: 'Darknet\'s -clear: start from iteration 0 (without it the Darknet schedule continues from the weights\' seen / batch, as Darknet does)' })
          .option('epochs', { type: 'number', describe: 'epochs to train' })
          .option('max-batches', { type: 'number', describe: 'iterations (updates) to train (default: the cfg max_batches)' })
          .option('batch', { type: 'number', describe: 'images per update (default: the cfg batch)' })
          .option('subdivisions', { type: 'number', describe: 'mini-batches per update (default: the cfg subdivisions)' })
          .option('img', { type: 'number', describe: 'network input size (width = height)' })
          .option('resume', { type: 'string', describe: 'a run folder or checkpoint to continue exactly' })
          .option('out', { type: 'string', default: 'runs/train', describe: 'runs folder' })
          .option('name', { type: 'string', default: 'exp', describe: 'run name (exp, exp2, ... when taken)' })
          .option('exist-ok', { type: 'boolean', default: false, describe: 'reuse the run folder' })
          .option('loss', { type: 'string', choices: ['darknet', 'yolov5'], describe: 'loss semantics (default darknet)' })
          .option('hyp', { type: 'string', describe: 'Ultralytics hyperparameter yaml (yolov5 loss gains, lr schedule)' })
          .option('optimizer', { type: 'string', choices: ['sgd', 'adam', 'adamw'], describe: 'default: SGD with the cfg momentum and decay' })
          .option('lr', { type: 'number', describe: 'learning rate (default: the cfg learning_rate)' })
          .option('ema', { type: 'boolean', describe: 'keep an EMA of the weights for validation and saving' })
          .option('freeze', { type: 'number', describe: 'freeze layers 0..N-1 (Ultralytics --freeze): no gradients, no updates; their BN statistics keep updating (default 0)' })
          .option('augment', { type: 'boolean', describe: 'data augmentation from the cfg: jitter, flip, HSV, mosaic (default on; --no-augment)' })
          .option('multi-scale', { type: 'boolean', describe: 'Darknet multi-scale training, the input size changing every 10 updates (default: the cfg\'s [yolo] random=1, with augmentation)' })
          .option('seed', { type: 'number', describe: 'seed for initialization, shuffling and augmentation (default 0)' })
          .option('workers', { type: 'number', describe: 'data loader worker threads' })
          .option('val-every', { type: 'number', describe: 'validate every N epochs (default 1; 0: never)' })
          .option('protocol', { type: 'string', choices: ['coco', 'ultralytics', 'voc', 'voc07'], describe: 'validation mAP protocol (default coco)' })
          .option('schedule', { type: 'string', choices: ['darknet', 'ultralytics'], describe: 'lr schedule: the cfg policy (default) or yolov5 epochs' })
          .option('cos-lr', { type: 'boolean', describe: 'ultralytics schedule: cosine instead of linear' })
          .option('save-every', { type: 'number', describe: 'save last every N iterations (default 100)' })
          .option('keep-every', { type: 'number', describe: 'keep weights/iter_<n>.weights every N iterations (default 0: none)' })
          .option('log-every', { type: 'number', describe: 'progress line every N iterations when not on a TTY (default 10)' })
          .option('progress', { type: 'string', choices: ['auto', 'bar', 'lines', 'none'], describe: 'progress display (default auto: a bar on a TTY)' })
          .check((a) => {
            if (!a.resume && (!a.cfg || !a.data)) throw new UsageError('train needs --cfg and --data (or --resume)');
            return true;
          }),
      async (a) => {
        const { runTrain } = await import('./train.js');
        const ac = new AbortController();
        const onInt = () => {
          if (ac.signal.aborted) process.exit(130);
          console.log('\ninterrupted: saving last (Ctrl-C again to quit at once)');
          ac.abort();
        };
        process.on('SIGINT', onInt);
        try {
          await runTrain({
            cfg: a.cfg, data: a.data, weights: a.weights, weightsCfg: a['weights-cfg'], clear: a.clear, epochs: a.epochs, maxBatches: a['max-batches'], batch: a.batch,
            subdivisions: a.subdivisions, img: a.img, resume: a.resume, out: a.out, name: a.name, existOk: a['exist-ok'],
            loss: a.loss as 'darknet' | undefined, hyp: a.hyp, optimizer: a.optimizer as 'sgd' | undefined, lr: a.lr, ema: a.ema, freeze: a.freeze,
            augment: a.augment, multiScale: a['multi-scale'], seed: a.seed, workers: a.workers, valEvery: a['val-every'], protocol: a.protocol as 'coco' | undefined,
            schedule: a.schedule as 'darknet' | undefined, cosLr: a['cos-lr'], saveEvery: a['save-every'], keepEvery: a['keep-every'],
            logEvery: a['log-every'], progress: a.progress as 'auto' | undefined, signal: ac.signal,
          });
        } finally {
          process.off('SIGINT', onInt);
        }
      },
    )
    .command(
      'partial',
      "cut a .weights file after its first N layers, as Darknet's `partial` (e.g. yolov4-tiny.conv.29 for fine-tuning): byte for byte Darknet's output",
      (y) =>
        y
          .option('cfg', { type: 'string', demandOption: true, describe: 'the Darknet .cfg of the weights' })
          .option('weights', { type: 'string', demandOption: true, describe: 'the .weights to cut' })
          .option('out', { type: 'string', demandOption: true, describe: 'the cut file to write (e.g. yolov4-tiny.conv.29)' })
          .option('layers', { type: 'number', demandOption: true, describe: 'keep layers 0..N-1 (Darknet\'s partial <cfg> <weights> <out> N)' }),
      async (a) => {
        const { runPartial } = await import('./partial.js');
        runPartial({ cfg: a.cfg, weights: a.weights, out: a.out, layers: a.layers, log: (l: string) => console.log(l) });
      },
    )
    .command(
      'export',
      'write the network as an ONNX model or a TF.js GraphModel folder for other runtimes (BN folded; the raw head tensors, or decoded boxes with --decode; docs/export.md)',
      (y) =>
        y
          .option('cfg', { type: 'string', demandOption: true, describe: 'Darknet .cfg file' })
          .option('weights', { type: 'string', demandOption: true, describe: 'Darknet .weights' })
          .option('format', { type: 'string', choices: ['onnx', 'tfjs'], default: 'onnx', describe: 'model format: onnx (one file) or tfjs (a GraphModel folder: model.json + weight shards, NHWC input)' })
          .option('out', { type: 'string', demandOption: true, describe: 'the file to write (model.onnx), or the folder (tfjs)' })
          .option('opset', { type: 'number', default: 13, describe: 'ONNX opset (13-25; 18+ writes Mish as one op; onnx only)' })
          .option('dynamic-batch', { type: 'boolean', default: false, describe: "a symbolic batch dimension 'N' (default: batch 1; onnx only, tfjs's batch is always free)" })
          .option('img', { type: 'number', array: true, describe: 'network input size: W H, or one value for both (default: the cfg width/height)' })
          .option('decode', { type: 'boolean', default: false, describe: 'one output boxes [N, boxes, 4+1+C]: cx, cy, w, h in input pixels, objectness, objectness × class probability (before thresholds and NMS)' }),
      async (a) => {
        const { runExport } = await import('./export.js');
        await runExport({ cfg: a.cfg, weights: a.weights, format: a.format as 'onnx' | 'tfjs', out: a.out, opset: a.opset, dynamicBatch: a['dynamic-batch'], img: a.img, decode: a.decode });
      },
    )
    .command(
      'val',
      'evaluate: mAP@0.5, mAP@0.5:0.95, P, R per class, plots, confusion matrix (a network, or an existing COCO-format detections file)',
      (y) =>
        y
          .option('data', { type: 'string', demandOption: true, describe: 'dataset: Darknet .data or Ultralytics .yaml' })
          .option('cfg', { type: 'string', describe: 'Darknet .cfg of the network to evaluate' })
          .option('weights', { type: 'string', describe: 'Darknet .weights' })
          .option('predictions', { type: 'string', describe: 'score this COCO-format detections json instead of running a network (image_id = image file stem)' })
          .option('protocol', { type: 'string', choices: ['coco', 'ultralytics', 'voc', 'voc07'], default: 'coco', describe: 'matching + AP integration: pycocotools, Ultralytics val, VOC2010+ all-points, VOC2007 11-point' })
          .option('conf', { type: 'number', default: 0.001, describe: 'confidence threshold for the network' })
          .option('iou', { type: 'number', default: 0.6, describe: 'NMS IoU threshold for the network' })
          .option('batch', { type: 'number', default: 1, describe: 'images per forward' })
          .option('img', { type: 'number', describe: 'network input size (default: the cfg width/height)' })
          .option('precision', { type: 'string', choices: ['auto', 'f32', 'f16'], default: 'auto', describe: 'inference precision: f16 (weights and activations in float16, sums in float32; needs shader-f16), f32 (the direct float32 kernels), or auto (f16 only where `tune` measured it faster on this adapter; the large 3x3 convs as Winograd)' })
          .option('split', { type: 'string', choices: ['val', 'test', 'train'], default: 'val' })
          .option('category-offset', { type: 'number', default: 0, describe: 'category_id = class + offset in the json' })
          .option('out', { type: 'string', default: 'runs/val', describe: 'output folder (metrics.json, plots, confusion matrix)' })
          .option('json', { type: 'string', describe: 'also write the summary and per-class numbers to this file' })
          .check((a) => {
            if (!a.predictions && !a.cfg) throw new UsageError('val needs --cfg (and --weights) to run a network, or --predictions to score a detections file');
            return true;
          }),
      async (a) => {
        const v = await import('./val.js');
        const common = {
          data: a.data, protocol: a.protocol as 'coco', conf: a.conf, iou: a.iou, split: a.split as 'val', categoryOffset: a['category-offset'],
          out: a.out, json: a.json,
        };
        const r = await v.runValCommand(a.predictions ? { ...common, predictions: a.predictions } : { ...common, cfg: a.cfg, weights: a.weights, batch: a.batch, img: a.img, precision: a.precision as 'auto' });
        // unreadable images were excluded from scoring with a warning each (the mAP covers the rest)
        if (r.skipped.length) process.exitCode = 1;
      },
    )
    .command(
      'anchors',
      'k-means anchors (IoU distance, as Darknet calc_anchors) over the training labels; optionally write them into a cfg copy',
      (y) =>
        y
          .option('data', { type: 'string', demandOption: true, describe: 'dataset: Darknet .data or Ultralytics .yaml' })
          .option('num', { type: 'number', default: 9, describe: 'number of anchors' })
          .option('width', { type: 'number', default: 416 })
          .option('height', { type: 'number', default: 416 })
          .option('img', { type: 'number', describe: 'square input size (sets width and height)' })
          .option('cfg', { type: 'string', describe: 'cfg to copy with the new anchors' })
          .option('cfg-out', { type: 'string', describe: 'where to write the cfg copy' })
          .option('seed', { type: 'number', default: 1 }),
      async (a) => {
        const { runAnchors } = await import('./anchors.js');
        await runAnchors({ data: a.data, num: a.num, width: a.img ?? a.width, height: a.img ?? a.height, cfg: a.cfg, cfgOut: a['cfg-out'], seed: a.seed });
      },
    )
    .command(
      'convert',
      'convert datasets: COCO instances JSON, Pascal VOC or labelme -> YOLO (labels, image lists, data.yaml, obj.data, obj.names); YOLO -> COCO instances JSON',
      (y) =>
        y
          .option('from', { type: 'string', choices: ['coco', 'voc', 'labelme', 'yolo'], demandOption: true, describe: 'source format' })
          .option('to', { type: 'string', choices: ['yolo', 'coco'], demandOption: true, describe: 'target format: yolo (from coco, voc, labelme) or coco (from yolo)' })
          .option('out', { type: 'string', demandOption: true, describe: 'output folder (to yolo: new or empty; to coco: instances_<split>.json go there)' })
          .option('json', { type: 'string', array: true, describe: 'coco: an instances JSON; repeat for more splits (the split comes from the name: instances_val2017.json is val)' })
          .option('images', { type: 'string', array: true, describe: 'coco: the folder file_name is relative to (one for every --json, or one per --json)' })
          .option('voc', { type: 'string', array: true, describe: 'voc: a VOC folder (Annotations/, JPEGImages/, ImageSets/Main/ split lists); repeatable (VOC2007 and VOC2012)' })
          .option('labelme', { type: 'string', array: true, describe: 'labelme: a folder of labelme JSON files (subfolders train/, val/, test/ are splits); repeatable' })
          .option('data', { type: 'string', describe: 'yolo: the dataset, Darknet .data or Ultralytics .yaml' })
          .option('split', { type: 'string', choices: ['train', 'val', 'test'], describe: 'from yolo: the one split to convert (default: all); to yolo: the split of images whose source has none' })
          .option('names', { type: 'string', describe: 'to yolo: class names file fixing the class list and order (objects of other classes are skipped)' })
          .option('val-fraction', { type: 'number', describe: 'to yolo: share of the images without a split of their own that go to val (default 0.1)' })
          .option('copy-images', { type: 'boolean', describe: 'to yolo: copy the images (default: symbolic links to them)' })
          .option('keep-crowd', { type: 'boolean', describe: 'coco: keep iscrowd=1 boxes as ordinary boxes (default: skipped)' })
          .option('drop-difficult', { type: 'boolean', describe: 'voc: skip difficult=1 objects, as voc_label.py (default: kept)' })
          .option('category-offset', { type: 'number', describe: 'to coco: category_id = class + offset (default 0, the ids val writes)' })
          .option('max-warnings', { type: 'number', describe: 'warning lines printed per kind (default 20; 0: all)' }),
      async (a) => {
        const { runConvert } = await import('./convert.js');
        const r = runConvert({
          from: a.from, to: a.to, out: a.out, json: a.json, images: a.images, voc: a.voc, labelme: a.labelme, data: a.data, split: a.split, names: a.names,
          valFraction: a['val-fraction'], copyImages: a['copy-images'], keepCrowd: a['keep-crowd'], dropDifficult: a['drop-difficult'],
          categoryOffset: a['category-offset'], maxWarnings: a['max-warnings'],
        });
        // skipped annotations were reported with their file and place, and counted in the summary line
        if (r.skipped) process.exitCode = 1;
      },
    )
    .command('bench <what>', 'benchmarks: profile (device time per kernel of a forward or training step),  kernels (conv2d variants vs the device matmul ceiling), network (a cfg: inference, training step, memory, first run, linearity), peers (the same network in TF.js and ONNX Runtime, same weights, same run), chart (PNG from saved results)', (y) =>
      y
        .positional('what', { choices: ['kernels', 'network', 'peers', 'chart', 'profile'] as const, describe: 'what to benchmark' })
        .option('img', { type: 'number', describe: 'profile: input size (default: the cfg)' })
        .option('train', { type: 'boolean', default: false, describe: 'profile: a training step instead of an inference forward' })
        .option('by-grid', { type: 'boolean', default: false, describe: 'profile: one row per kernel and workgroup grid (tells the layers of a kernel apart)' })
        .option('size', { type: 'number', default: 416, describe: 'kernels: network input size the conv shapes derive from' })
        .option('iters', { type: 'number', describe: 'timed repetitions per measurement' })
        .option('json', { type: 'string', describe: 'write the results as JSON to this file' })
        .option('quick', { type: 'boolean', default: false, describe: 'fewer repeats, shorter time budget per case (network/peers: small sizes)' })
        .option('variants', { type: 'string', describe: 'kernels: comma-separated conv algorithms (direct,gemm_tiled,gemm_reg,tile,winograd)' })
        .option('passes', { type: 'string', describe: 'kernels: comma-separated passes (fwd,bwd_data,bwd_weights)' })
        .option('layers', { type: 'string', describe: 'kernels: comma-separated yolov3-tiny layer indices' })
        .option('cfg', { type: 'string', describe: 'network/peers: Darknet .cfg' })
        .option('weights', { type: 'string', describe: 'network/peers: Darknet .weights (default: seeded random)' })
        .option('sizes', { type: 'string', describe: 'network: inference sizes (default 256,416); peers: inference sizes (default 416,256)' })
        .option('batches', { type: 'string', describe: 'network: inference batches (default 1,8)' })
        .option('batch', { type: 'number', describe: 'peers: inference batch; profile: the batch of the profiled forward or training step (default 1)' })
        .option('train-sizes', { type: 'string', describe: 'network: training sizes (default: --sizes)' })
        .option('train-size', { type: 'number', describe: 'peers: training size (default 256)' })
        .option('train-batches', { type: 'string', describe: "network/peers: training batches (default 1,4; '' for none)" })
        .option('loss', { type: 'string', choices: ['darknet', 'yolov5', 'sumsq'], describe: 'network: training loss (default darknet)' })
        .option('sweep-batches', { type: 'string', describe: "network: batches of the time-vs-batch sweep (default 1,2,4,8; '' for none)" })
        .option('sweep-sizes', { type: 'string', describe: "network: sizes of the time-vs-pixels sweep (default 128,192,256,320,416; '' for none)" })
        .option('engines', { type: 'string', describe: 'peers: comma-separated engines (default yolo-wgsl,yolo-wgsl-replay,tfjs-webgpu,tfjs-wasm,ort-cpu,ort-webgpu; also tfjs-cpu)' })
        .option('yolo-loss', { type: 'boolean', describe: 'peers: also time our step with the real YOLO loss (default on; --no-yolo-loss)' })
        .option('min-iters', { type: 'number', describe: 'network/peers: minimum timed repetitions' })
        .option('budget', { type: 'number', describe: 'network/peers: seconds after which a case stops at --min-iters' })
        .option('min-seconds', { type: 'number', describe: 'network: a fast case repeats past --iters until its samples add up to this many seconds, at most 5x --iters (default 1; --quick 0.3; 0: off)' })
        .option('tolerance', { type: 'number', describe: 'peers: relative tolerance of the output check (default 1e-3)' })
        .option('darknet', { type: 'string', describe: "peers: an AlexeyAB Darknet binary: also time Darknet on the demo training job and at inference (docs/performance.md)" })
        .option('darknet-iters', { type: 'number', describe: 'peers: training iterations of the demo job for Darknet and yolo-wgsl (default 200; --quick 30)' })
        .option('peak', { type: 'boolean', default: true, describe: 'kernels/network: measure the device FMA peak first and report fractions of it (--no-peak skips)' })
        .option('precision', { type: 'string', choices: ['auto', 'f32', 'f16'], describe: 'network: inference precision (f16 needs shader-f16; f32: the direct float32 kernels; default auto: f16 only where `tune` measured it faster, the large 3x3 convs as Winograd)' })
        .option('md', { type: 'string', describe: 'also write the markdown report to this file' })
        .option('out', { type: 'string', describe: 'network/peers: write <out>/<what>-<adapter>-<cfg>.json and .md; chart: read them, write <out>/bench-<adapter>-<cfg>.png' })
        .option('network', { type: 'string', describe: 'chart: a network bench JSON' })
        .option('peers', { type: 'string', describe: 'chart: a peers bench JSON' })
        .option('png', { type: 'string', describe: 'chart: the PNG to write' }),
      async (a) => {
        const b = await import('./bench.js');
        if (a.what !== 'kernels') {
          if (a.what === 'chart') return b.runBenchChart({ network: a.network, peers: a.peers, png: a.png, out: a.out, cfg: a.cfg });
          if (a.what === 'profile') {
            if (!a.cfg) throw new Error('bench profile needs --cfg');
            return b.runBenchProfile({ cfg: a.cfg, img: a.img, batch: a.batch, train: a.train, loss: a.loss as 'yolov5' | undefined, steps: a.iters, json: a.json, byGrid: a.byGrid });
          }
          if (!a.cfg) throw new Error(`bench ${a.what} needs --cfg (e.g. ../shared/darknet-cfg/yolov3-tiny.cfg)`);
          const common = { cfg: a.cfg, weights: a.weights, iters: a.iters, minIters: a['min-iters'], budget: a.budget, quick: a.quick, json: a.json, md: a.md, out: a.out };
          if (a.what === 'network') {
            return b.runBenchNetwork({
              ...common, sizes: a.sizes, batches: a.batches, trainSizes: a['train-sizes'], trainBatches: a['train-batches'], loss: a.loss,
              sweepBatches: a['sweep-batches'], sweepSizes: a['sweep-sizes'], peak: a.peak, precision: a.precision, minSeconds: a['min-seconds'],
            });
          }
          return b.runBenchPeers({
            ...common, sizes: a.sizes, batch: a.batch, trainSize: a['train-size'], trainBatches: a['train-batches'], engines: a.engines,
            yoloLoss: a['yolo-loss'], tolerance: a.tolerance, darknet: a.darknet, darknetIters: a['darknet-iters'],
          });
        }
        const { runBenchKernels } = b;
        const list = (v?: string) => (v ? v.split(',').map((x) => x.trim()).filter(Boolean) : undefined);
        await runBenchKernels({
          size: a.size, iters: a.iters, json: a.json, md: a.md, quick: a.quick, variants: list(a.variants), passes: list(a.passes),
          layers: list(a.layers)?.map(Number), peak: a.peak,
        });
      },
    )
    .demandCommand(1, 'name a command (see --help)')
    .strict()
    .recommendCommands()
    .fail((msg, err) => {
      // usage errors (an unknown option, a number out of range, a missing option) become UsageErrors: exit 2
      if (err && !(err instanceof SettingError) && !(err instanceof UsageError)) throw err;
      throw err instanceof UsageError ? err : new UsageError(err ? err.message : msg);
    })
    .help()
    .parseAsync();
}

async function writeJson(file: string, data: unknown): Promise<void> {
  const { writeFileAtomic } = await import('../util/fs.js');
  writeFileAtomic(file, JSON.stringify(data, null, 2) + '\n');
}

/**
 * Prints a failed command's error as one line (`yolo-wgsl: CfgError: file:line: ...`; the stack only with
 * --verbose, YOLO_WGSL_VERBOSE=1 or YOLO_WGSL_DEBUG=1) and returns the exit code: 2 for a usage error, 1 for the rest.
 */
export function reportError(e: unknown, args: readonly string[] = process.argv): number {
  const err = e instanceof Error ? e : new Error(String(e));
  const usage = err instanceof UsageError || err instanceof SettingError;
  console.error(`yolo-wgsl: ${!usage && err.name && err.name !== 'Error' ? `${err.name}: ` : ''}${err.message}${usage ? '\n(see yolo-wgsl --help)' : ''}`);
  if (args.includes('--verbose') || process.env.YOLO_WGSL_VERBOSE === '1' || process.env.YOLO_WGSL_DEBUG === '1') console.error(err.stack);
  return usage ? 2 : 1;
}

const isMain = process.argv[1] && import.meta.url.endsWith(process.argv[1].replace(/\\/g, '/').split('/').pop()!);
if (isMain) main(hideBin(process.argv)).catch((e: unknown) => process.exit(reportError(e)));
