/**
 * `yolo-wgsl info --cfg X.cfg [--width W --height H --channels C --batch B] [--json FILE]`: builds the
 * network from the cfg (shape inference only, no GPU) and prints Darknet's layer table and total BFLOPs.
 */
import { Network } from '../darknet/network.js';
import { formatInfo, networkInfo, type NetworkInfo } from '../darknet/info.js';

export interface InfoOptions {
  cfg: string;
  width?: number;
  height?: number;
  channels?: number;
  batch?: number;
  /** Where to print (default console.log). */
  log?: (line: string) => void;
}

/** Prints the table and returns it (a CfgError propagates with its file:line message). */
export function runInfo(opts: InfoOptions): NetworkInfo {
  const net = Network.fromFile(opts.cfg, { width: opts.width, height: opts.height, channels: opts.channels, batch: opts.batch });
  const info = networkInfo(net);
  (opts.log ?? ((l: string) => console.log(l)))(formatInfo(info));
  return info;
}
