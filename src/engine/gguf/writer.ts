/**
 * A small streaming GGUF v3 writer: metadata key/values then tensors (F32, F16 or Q8_0), written to
 * a file. Used by the test-model and benchmark-model generators; no model file is ever committed.
 */
import { open, type FileHandle } from 'node:fs/promises';
import { GGUF_ALIGNMENT, GGUF_MAGIC, GGUF_VERSION, GgmlType, GgufValueType, tensorBytes } from './format.js';

export type GgufValue =
  | { type: 'string'; value: string }
  | { type: 'u32'; value: number }
  | { type: 'i32'; value: number }
  | { type: 'f32'; value: number }
  | { type: 'bool'; value: boolean }
  | { type: 'string[]'; value: readonly string[] }
  | { type: 'f32[]'; value: readonly number[] }
  | { type: 'i32[]'; value: readonly number[] };

export interface GgufTensorSpec {
  name: string;
  /** ggml order: dims[0] is the row length (innermost). */
  dims: readonly number[];
  type: GgmlType;
  /** Produces the tensor bytes (exactly tensorBytes(type, dims)); called once, in file order. */
  data: () => Uint8Array;
}

class Buf {
  parts: Buffer[] = [];
  u32(v: number) {
    const b = Buffer.alloc(4);
    b.writeUInt32LE(v);
    this.parts.push(b);
  }
  i32(v: number) {
    const b = Buffer.alloc(4);
    b.writeInt32LE(v);
    this.parts.push(b);
  }
  u64(v: number) {
    const b = Buffer.alloc(8);
    b.writeBigUInt64LE(BigInt(v));
    this.parts.push(b);
  }
  f32(v: number) {
    const b = Buffer.alloc(4);
    b.writeFloatLE(v);
    this.parts.push(b);
  }
  str(s: string) {
    const b = Buffer.from(s, 'utf8');
    this.u64(b.length);
    this.parts.push(b);
  }
  get length() {
    return this.parts.reduce((a, b) => a + b.length, 0);
  }
}

function writeValue(buf: Buf, v: GgufValue): void {
  switch (v.type) {
    case 'string':
      buf.u32(GgufValueType.STRING);
      buf.str(v.value);
      return;
    case 'u32':
      buf.u32(GgufValueType.UINT32);
      buf.u32(v.value);
      return;
    case 'i32':
      buf.u32(GgufValueType.INT32);
      buf.i32(v.value);
      return;
    case 'f32':
      buf.u32(GgufValueType.FLOAT32);
      buf.f32(v.value);
      return;
    case 'bool':
      buf.u32(GgufValueType.BOOL);
      buf.parts.push(Buffer.from([v.value ? 1 : 0]));
      return;
    case 'string[]':
      buf.u32(GgufValueType.ARRAY);
      buf.u32(GgufValueType.STRING);
      buf.u64(v.value.length);
      for (const s of v.value) buf.str(s);
      return;
    case 'f32[]':
      buf.u32(GgufValueType.ARRAY);
      buf.u32(GgufValueType.FLOAT32);
      buf.u64(v.value.length);
      for (const x of v.value) buf.f32(x);
      return;
    case 'i32[]':
      buf.u32(GgufValueType.ARRAY);
      buf.u32(GgufValueType.INT32);
      buf.u64(v.value.length);
      for (const x of v.value) buf.i32(x);
      return;
  }
}

const pad = (n: number) => (GGUF_ALIGNMENT - (n % GGUF_ALIGNMENT)) % GGUF_ALIGNMENT;

export async function writeGguf(
  path: string,
  metadata: Record<string, GgufValue>,
  tensors: readonly GgufTensorSpec[],
): Promise<void> {
  const head = new Buf();
  head.u32(GGUF_MAGIC);
  head.u32(GGUF_VERSION);
  head.u64(tensors.length);
  head.u64(Object.keys(metadata).length);
  for (const [k, v] of Object.entries(metadata)) {
    head.str(k);
    writeValue(head, v);
  }
  let offset = 0;
  for (const t of tensors) {
    head.str(t.name);
    head.u32(t.dims.length);
    for (const d of t.dims) head.u64(d);
    head.u32(t.type);
    head.u64(offset);
    offset += tensorBytes(t.type, t.dims);
    offset += pad(offset);
  }
  head.parts.push(Buffer.alloc(pad(head.length)));
  let fh: FileHandle | undefined;
  try {
    fh = await open(path, 'w');
    await fh.write(Buffer.concat(head.parts));
    for (const t of tensors) {
      const bytes = t.data();
      const want = tensorBytes(t.type, t.dims);
      if (bytes.length !== want) throw new Error(`tensor ${t.name}: ${bytes.length} bytes, expected ${want}`);
      await fh.write(bytes);
      const p = pad(bytes.length);
      if (p) await fh.write(Buffer.alloc(p));
    }
  } finally {
    await fh?.close();
  }
}

/** Encode f32 values as a Float32 little-endian byte array. */
export function f32Bytes(values: Float32Array): Uint8Array {
  return new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
}

/** Quantize f32 values to Q8_0 blocks (f16 scale + 32 int8), as ggml does. */
export function q8_0Bytes(values: Float32Array): Uint8Array {
  if (values.length % 32 !== 0) throw new Error('q8_0 needs a multiple of 32 values');
  const out = Buffer.alloc((values.length / 32) * 34);
  for (let b = 0; b < values.length / 32; b++) {
    let amax = 0;
    for (let i = 0; i < 32; i++) amax = Math.max(amax, Math.abs(values[b * 32 + i] as number));
    const d = amax / 127;
    const id = d ? 1 / d : 0;
    out.writeUInt16LE(f32ToF16(d), b * 34);
    for (let i = 0; i < 32; i++)
      out.writeInt8(Math.round((values[b * 32 + i] as number) * id), b * 34 + 2 + i);
  }
  return out;
}

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);
/** IEEE half from a float (round-to-nearest, no NaN handling needed for finite scales). */
export function f32ToF16(v: number): number {
  f32[0] = v;
  const x = u32[0] as number;
  const sign = (x >>> 16) & 0x8000;
  const exp = ((x >>> 23) & 0xff) - 127 + 15;
  const mant = x & 0x7fffff;
  if (exp <= 0) return sign; // flush tiny values to zero
  if (exp >= 31) return sign | 0x7bff; // clamp to max finite
  return sign | (exp << 10) | Math.round(mant / 0x2000);
}
