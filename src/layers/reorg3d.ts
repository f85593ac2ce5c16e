/** [reorg3d] (AlexeyAB reorg_layer.c): plain space-to-depth; implemented by ReorgLayer (see reorg.ts). */
import type { BuildContext } from '../darknet/layer.js';
import { ReorgLayer } from './reorg.js';

export const build = (ctx: BuildContext): ReorgLayer<'reorg3d'> => new ReorgLayer(ctx, 'reorg3d');
