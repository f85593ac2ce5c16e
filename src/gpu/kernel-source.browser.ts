/**
 * Where the WGSL comes from in the browser bundle: every kernels/**\/*.wgsl file inlined at build time
 * (scripts/build-browser.mjs defines __YOLO_WGSL_KERNELS__ as { 'conv2d_direct.wgsl': '...', ... }).
 */
declare const __YOLO_WGSL_KERNELS__: Record<string, string>;

const KERNELS: Record<string, string> = typeof __YOLO_WGSL_KERNELS__ !== 'undefined' ? __YOLO_WGSL_KERNELS__ : {};

/** The text of kernels/<file> ('conv2d_direct.wgsl', 'lib/act.wgsl') as bundled. */
export function readKernelFile(file: string): string {
  const text = KERNELS[file];
  if (text === undefined) throw new Error(`kernel file ${file} is not in the browser bundle (${Object.keys(KERNELS).length} files bundled)`);
  return text;
}
