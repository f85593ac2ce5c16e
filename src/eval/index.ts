/** Detection evaluation: protocols (coco, ultralytics, voc, voc07), confusion matrix, COCO json, plots. */
export * from './types.js';
export * from './numeric.js';
export * from './coco.js';
export * from './ultralytics.js';
export * from './voc.js';
export * from './metrics.js';
export * from './confusion.js';
export * from './cocojson.js';
export * from './plots.js';
