/**
 * Validates a GGUF file's header, metadata and tensor table before llama.cpp sees it. llama.cpp
 * aborts the whole process on some malformed files; this check is bounds-checked JavaScript, so a
 * corrupt or untrusted file becomes a clear error instead of a crash.
 */
import { open } from 'node:fs/promises';
import { GGUF_ALIGNMENT, GGUF_MAGIC, GgufValueType, TYPE_LAYOUT } from './format.js';

export class GgufError extends Error {
  constructor(path: string, detail: string) {
    super(`invalid GGUF file ${path}: ${detail}`);
    this.name = 'GgufError';
  }
}

export interface GgufSummary {
  version: number;
  metadata: Map<string, unknown>;
  tensors: { name: string; dims: number[]; type: number; offset: number }[];
  architecture: string;
  fileSize: number;
}

const MAX_HEADER_BYTES = 256 * 1024 * 1024; // tokenizer vocabularies are large; bound anyway
const MAX_COUNT = 10_000_000;
const MAX_STRING = 64 * 1024 * 1024;

class Cursor {
  pos = 0;
  constructor(
    readonly buf: Buffer,
    readonly fail: (d: string) => never,
  ) {}
  need(n: number) {
    if (this.pos + n > this.buf.length) this.fail(`truncated at byte ${this.pos} (need ${n} more)`);
  }
  u8() {
    this.need(1);
    return this.buf.readUInt8(this.pos++);
  }
  u32() {
    this.need(4);
    const v = this.buf.readUInt32LE(this.pos);
    this.pos += 4;
    return v;
  }
  u64() {
    this.need(8);
    const v = this.buf.readBigUInt64LE(this.pos);
    this.pos += 8;
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) this.fail(`64-bit value too large at byte ${this.pos - 8}`);
    return Number(v);
  }
  str() {
    const n = this.u64();
    if (n > MAX_STRING) this.fail(`string of ${n} bytes at byte ${this.pos}`);
    this.need(n);
    const s = this.buf.toString('utf8', this.pos, this.pos + n);
    this.pos += n;
    return s;
  }
  skip(n: number) {
    this.need(n);
    this.pos += n;
  }
}

const SCALAR_SIZE: Partial<Record<GgufValueType, number>> = {
  [GgufValueType.UINT8]: 1,
  [GgufValueType.INT8]: 1,
  [GgufValueType.BOOL]: 1,
  [GgufValueType.UINT16]: 2,
  [GgufValueType.INT16]: 2,
  [GgufValueType.UINT32]: 4,
  [GgufValueType.INT32]: 4,
  [GgufValueType.FLOAT32]: 4,
  [GgufValueType.UINT64]: 8,
  [GgufValueType.INT64]: 8,
  [GgufValueType.FLOAT64]: 8,
};

function readScalar(c: Cursor, type: GgufValueType): unknown {
  const start = c.pos;
  switch (type) {
    case GgufValueType.STRING:
      return c.str();
    case GgufValueType.UINT32:
      return c.u32();
    case GgufValueType.INT32:
      c.need(4);
      c.pos += 4;
      return c.buf.readInt32LE(start);
    case GgufValueType.FLOAT32:
      c.need(4);
      c.pos += 4;
      return c.buf.readFloatLE(start);
    case GgufValueType.BOOL:
      return c.u8() !== 0;
    case GgufValueType.UINT64:
      return c.u64();
    default: {
      const size = SCALAR_SIZE[type];
      if (size === undefined) return c.fail(`unknown value type ${type} at byte ${start}`);
      c.skip(size);
      return undefined;
    }
  }
}

function readValue(c: Cursor, type: GgufValueType): unknown {
  if (type !== GgufValueType.ARRAY) return readScalar(c, type);
  const itemType = c.u32() as GgufValueType;
  const n = c.u64();
  if (n > MAX_COUNT) c.fail(`array of ${n} items`);
  if (itemType === GgufValueType.ARRAY) c.fail('nested arrays are not supported');
  const size = SCALAR_SIZE[itemType];
  if (size !== undefined && itemType !== GgufValueType.FLOAT32 && itemType !== GgufValueType.INT32) {
    c.skip(size * n);
    return { length: n };
  }
  const out: unknown[] = [];
  for (let i = 0; i < n; i++) out.push(readScalar(c, itemType));
  return out;
}

/** Parse and check a GGUF file; throws GgufError with a readable reason. */
export async function validateGguf(path: string): Promise<GgufSummary> {
  const fail = (d: string): never => {
    throw new GgufError(path, d);
  };
  const fh = await open(path, 'r').catch((e: NodeJS.ErrnoException) =>
    fail(e.code === 'ENOENT' ? 'file not found' : String(e.message)),
  );
  try {
    const fileSize = (await fh.stat()).size;
    if (fileSize < 24) fail(`file is only ${fileSize} bytes`);
    const len = Math.min(fileSize, MAX_HEADER_BYTES);
    const buf = Buffer.alloc(len);
    await fh.read(buf, 0, len, 0);
    const c = new Cursor(buf, fail);
    if (c.u32() !== GGUF_MAGIC) fail('bad magic (not a GGUF file)');
    const version = c.u32();
    if (version !== 2 && version !== 3) fail(`unsupported version ${version}`);
    const nTensors = c.u64();
    const nKv = c.u64();
    if (nTensors > MAX_COUNT || nKv > MAX_COUNT)
      fail(`implausible counts (${nTensors} tensors, ${nKv} keys)`);
    const metadata = new Map<string, unknown>();
    for (let i = 0; i < nKv; i++) {
      const key = c.str();
      const type = c.u32() as GgufValueType;
      metadata.set(key, readValue(c, type));
    }
    const architecture = metadata.get('general.architecture');
    if (typeof architecture !== 'string' || !architecture) fail('general.architecture is missing');
    const alignmentRaw = metadata.get('general.alignment');
    const alignment = typeof alignmentRaw === 'number' && alignmentRaw > 0 ? alignmentRaw : GGUF_ALIGNMENT;
    const tensors: GgufSummary['tensors'] = [];
    let dataEnd = 0;
    for (let i = 0; i < nTensors; i++) {
      const name = c.str();
      const nDims = c.u32();
      if (nDims < 1 || nDims > 4) fail(`tensor ${name}: ${nDims} dimensions`);
      const dims: number[] = [];
      for (let d = 0; d < nDims; d++) {
        const v = c.u64();
        if (v < 1 || v > 2 ** 32) fail(`tensor ${name}: bad dimension ${v}`);
        dims.push(v);
      }
      const type = c.u32();
      const offset = c.u64();
      if (offset % alignment !== 0) fail(`tensor ${name}: misaligned offset ${offset}`);
      const layout = TYPE_LAYOUT[type];
      if (layout) {
        const n = dims.reduce((a, b) => a * b, 1);
        if ((dims[0] as number) % layout.blockSize !== 0)
          fail(`tensor ${name}: row not a whole number of blocks`);
        dataEnd = Math.max(dataEnd, offset + (n / layout.blockSize) * layout.blockBytes);
      } else if (type > 64) fail(`tensor ${name}: unknown type ${type}`);
      tensors.push({ name, dims, type, offset });
    }
    const dataStart = c.pos + ((alignment - (c.pos % alignment)) % alignment);
    if (dataStart + dataEnd > fileSize)
      fail(`truncated: tensor data needs ${dataStart + dataEnd} bytes, file has ${fileSize}`);
    if (nTensors === 0) fail('no tensors');
    return { version, metadata, tensors, architecture: architecture as string, fileSize };
  } finally {
    await fh.close();
  }
}
