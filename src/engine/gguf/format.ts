/** GGUF (v3) constants shared by the writer and the validator. Spec: ggml/docs/gguf.md. */
export const GGUF_MAGIC = 0x46554747; // "GGUF" little-endian
export const GGUF_VERSION = 3;
export const GGUF_ALIGNMENT = 32;

export enum GgufValueType {
  UINT8 = 0,
  INT8 = 1,
  UINT16 = 2,
  INT16 = 3,
  UINT32 = 4,
  INT32 = 5,
  FLOAT32 = 6,
  BOOL = 7,
  STRING = 8,
  ARRAY = 9,
  UINT64 = 10,
  INT64 = 11,
  FLOAT64 = 12,
}

/** ggml tensor types this project writes or checks sizes for. */
export enum GgmlType {
  F32 = 0,
  F16 = 1,
  Q8_0 = 8,
}

/** Bytes per block and elements per block for the types we know. */
export const TYPE_LAYOUT: Record<number, { blockBytes: number; blockSize: number }> = {
  [GgmlType.F32]: { blockBytes: 4, blockSize: 1 },
  [GgmlType.F16]: { blockBytes: 2, blockSize: 1 },
  [GgmlType.Q8_0]: { blockBytes: 34, blockSize: 32 },
};

export function tensorBytes(type: number, dims: readonly number[]): number {
  const layout = TYPE_LAYOUT[type];
  if (!layout) throw new Error(`unknown ggml type ${type}`);
  const n = dims.reduce((a, b) => a * b, 1);
  return (n / layout.blockSize) * layout.blockBytes;
}
