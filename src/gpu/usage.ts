/**
 * GPUBufferUsage / GPUMapMode flags by name (the WebGPU spec's values). A local table rather than the
 * globals: in Node the `webgpu` package defines GPUBufferUsage and GPUMapMode on globalThis only when Dawn is
 * loaded (adapter selection, src/gpu/adapter.ts), and importing the library must not load it, so the globals
 * do not exist when modules such as pool.ts compute their usage at import. test/gpu/params.test.ts checks the
 * values against Dawn's globals.
 */
export const BufferUsage = {
  MAP_READ: 0x0001,
  MAP_WRITE: 0x0002,
  COPY_SRC: 0x0004,
  COPY_DST: 0x0008,
  INDEX: 0x0010,
  VERTEX: 0x0020,
  UNIFORM: 0x0040,
  STORAGE: 0x0080,
  INDIRECT: 0x0100,
  QUERY_RESOLVE: 0x0200,
} as const;

export const MapMode = {
  READ: 0x0001,
  WRITE: 0x0002,
} as const;
