/**
 * From parsed Darknet head layers to decode specs. Typed structurally so this module does not depend on the
 * layer classes: a [yolo] layer (src/layers/yolo.ts YoloLayer), a [Gaussian_yolo] layer
 * (src/layers/gaussian_yolo.ts GaussianYoloLayer) and a [region] layer (src/layers/region.ts RegionLayer) fit.
 */
import { selectAnchors, type HeadSpec } from './decode.js';
import { nmsOptionsFromDarknet, type NmsOptions } from './nms.js';
import { requireLayerFile, type LayerFile, type Tree } from '../darknet/tree.js';

export interface YoloLayerLike {
  kind: 'yolo';
  options: {
    classes: number;
    mask: readonly number[];
    /** All anchors, (w, h) pairs in network-input pixels. */
    anchors: readonly number[];
    scaleXY: number;
    newCoords: boolean;
    nmsKind?: string;
    betaNms?: number;
    /** embedding_layer (absolute index) and the embedding size E per anchor: the detections carry embeddings */
    embeddingLayer?: number | null;
    embeddingSize?: number;
  };
}

export interface RegionLayerLike {
  kind: 'region';
  options: {
    classes: number;
    coords: number;
    num: number;
    /** (w, h) pairs in grid cells. */
    anchors: readonly number[];
    softmax: boolean;
    /** tree= (YOLO9000): the class hierarchy, or why its file is absent; null/absent: none. */
    tree?: LayerFile<Tree> | null;
  };
}

export interface GaussianYoloLayerLike {
  kind: 'Gaussian_yolo';
  options: {
    classes: number;
    mask: readonly number[];
    /** All anchors, (w, h) pairs in network-input pixels. */
    anchors: readonly number[];
    scaleXY: number;
    nmsKind?: string;
    betaNms?: number;
  };
}

export type HeadLayerLike = YoloLayerLike | RegionLayerLike | GaussianYoloLayerLike;

/**
 * Whether a head layer is one the box decoder handles: [yolo], [Gaussian_yolo] or [region]. Filter
 * Network.heads() with it (`net.heads().filter(isHeadLayer)`): [detection] (YOLOv1) is a head too, but has
 * no decoder here.
 */
export function isHeadLayer<L extends { kind: string }>(l: L): l is L & HeadLayerLike {
  return l.kind === 'yolo' || l.kind === 'region' || l.kind === 'Gaussian_yolo';
}

/**
 * The decode spec of a head layer and the NMS its cfg asks for (Darknet: nms_kind / beta_nms of [yolo] and
 * [Gaussian_yolo]).
 */
export function headFromLayer(l: HeadLayerLike): { spec: HeadSpec; nms: Pick<NmsOptions, 'kind' | 'beta'> } {
  if (l.kind === 'Gaussian_yolo') {
    const o = l.options;
    return {
      spec: { kind: 'Gaussian_yolo', anchors: selectAnchors(o.anchors, o.mask), classes: o.classes, scaleXY: o.scaleXY },
      nms: nmsOptionsFromDarknet(o.nmsKind ?? 'default', o.betaNms ?? 0.6),
    };
  }
  if (l.kind === 'yolo') {
    const o = l.options;
    return {
      spec: { kind: 'yolo', anchors: selectAnchors(o.anchors, o.mask), classes: o.classes, scaleXY: o.scaleXY, newCoords: o.newCoords },
      nms: nmsOptionsFromDarknet(o.nmsKind ?? 'default', o.betaNms ?? 0.6),
    };
  }
  const o = l.options;
  if (o.coords !== 4) throw new Error(`[region] with coords=${o.coords} is not supported by the decoder (coords=4 only)`);
  const tree = o.tree ? requireLayerFile(o.tree, 'detection') : undefined;
  return {
    spec: { kind: 'region', anchors: o.anchors.slice(0, 2 * o.num), classes: o.classes, softmax: o.softmax, ...(tree ? { tree } : {}) },
    nms: { kind: 'iou' },
  };
}
