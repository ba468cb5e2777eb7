/**
 * Generates a random-weight GGUF with Qwen2.5-0.5B-Instruct's shape (qwen2 architecture, 24 layers,
 * 896 wide, 14/2 heads, 4864 feed-forward, 151,936-token vocabulary, tied embeddings), quantized
 * q8_0. Its output is noise, but it decodes at that model's real speed: the engine benchmark uses it
 * so no download is needed. Written to a temp dir; never committed (~530 MB).
 */
import { randomFillSync } from 'node:crypto';
import { GgmlType } from './format.js';
import { f32Bytes, f32ToF16, writeGguf, type GgufTensorSpec, type GgufValue } from './writer.js';

export const QWEN05_SHAPE = {
  nEmbd: 896,
  nLayer: 24,
  nHead: 14,
  nHeadKv: 2,
  nFf: 4864,
  nVocab: 151_936,
} as const;

/** Random q8_0 blocks with a small fixed scale (weights within about +-0.03). */
function randomQ8(n: number): Uint8Array {
  const blocks = n / 32;
  const buf = Buffer.allocUnsafe(blocks * 34);
  randomFillSync(buf);
  const scale = f32ToF16(0.03 / 127);
  for (let b = 0; b < blocks; b++) buf.writeUInt16LE(scale, b * 34);
  return buf;
}

export async function writeQwenShapedModel(path: string, shape = QWEN05_SHAPE): Promise<void> {
  const { nEmbd, nLayer, nHead, nHeadKv, nFf, nVocab } = shape;
  const headDim = nEmbd / nHead;
  const nKv = headDim * nHeadKv;
  const ones = (n: number) => () => f32Bytes(new Float32Array(n).fill(1));
  const zeros = (n: number) => () => f32Bytes(new Float32Array(n));
  const q8 = (name: string, dims: number[]): GgufTensorSpec => ({
    name,
    dims,
    type: GgmlType.Q8_0,
    data: () => randomQ8(dims.reduce((a, b) => a * b, 1)),
  });
  const tensors: GgufTensorSpec[] = [
    q8('token_embd.weight', [nEmbd, nVocab]),
    { name: 'output_norm.weight', dims: [nEmbd], type: GgmlType.F32, data: ones(nEmbd) },
  ];
  for (let l = 0; l < nLayer; l++) {
    const p = `blk.${l}.`;
    tensors.push(
      { name: p + 'attn_norm.weight', dims: [nEmbd], type: GgmlType.F32, data: ones(nEmbd) },
      q8(p + 'attn_q.weight', [nEmbd, nEmbd]),
      { name: p + 'attn_q.bias', dims: [nEmbd], type: GgmlType.F32, data: zeros(nEmbd) },
      q8(p + 'attn_k.weight', [nEmbd, nKv]),
      { name: p + 'attn_k.bias', dims: [nKv], type: GgmlType.F32, data: zeros(nKv) },
      q8(p + 'attn_v.weight', [nEmbd, nKv]),
      { name: p + 'attn_v.bias', dims: [nKv], type: GgmlType.F32, data: zeros(nKv) },
      q8(p + 'attn_output.weight', [nEmbd, nEmbd]),
      { name: p + 'ffn_norm.weight', dims: [nEmbd], type: GgmlType.F32, data: ones(nEmbd) },
      q8(p + 'ffn_gate.weight', [nEmbd, nFf]),
      q8(p + 'ffn_up.weight', [nEmbd, nFf]),
      q8(p + 'ffn_down.weight', [nFf, nEmbd]),
    );
  }
  // SentencePiece-style vocabulary: specials, 256 byte tokens, then filler words up to nVocab.
  const tokens: string[] = ['<unk>', '<s>', '</s>', '<|im_start|>', '<|im_end|>'];
  const types: number[] = [2, 3, 3, 3, 3];
  for (let b = 0; b < 256; b++) {
    tokens.push(`<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`);
    types.push(6);
  }
  for (let i = tokens.length; i < nVocab; i++) {
    tokens.push(`▁w${i}`);
    types.push(1);
  }
  const md: Record<string, GgufValue> = {
    'general.architecture': { type: 'string', value: 'qwen2' },
    'general.name': { type: 'string', value: 'qwen2.5-0.5b-shaped-random-q8_0' },
    'general.file_type': { type: 'u32', value: 7 }, // MOSTLY_Q8_0
    'qwen2.context_length': { type: 'u32', value: 32_768 },
    'qwen2.embedding_length': { type: 'u32', value: nEmbd },
    'qwen2.block_count': { type: 'u32', value: nLayer },
    'qwen2.feed_forward_length': { type: 'u32', value: nFf },
    'qwen2.attention.head_count': { type: 'u32', value: nHead },
    'qwen2.attention.head_count_kv': { type: 'u32', value: nHeadKv },
    'qwen2.rope.freq_base': { type: 'f32', value: 1_000_000 },
    'qwen2.attention.layer_norm_rms_epsilon': { type: 'f32', value: 1e-6 },
    'tokenizer.ggml.model': { type: 'string', value: 'llama' },
    'tokenizer.ggml.tokens': { type: 'string[]', value: tokens },
    'tokenizer.ggml.scores': { type: 'f32[]', value: tokens.map(() => 0) },
    'tokenizer.ggml.token_type': { type: 'i32[]', value: types },
    'tokenizer.ggml.unknown_token_id': { type: 'u32', value: 0 },
    'tokenizer.ggml.bos_token_id': { type: 'u32', value: 1 },
    'tokenizer.ggml.eos_token_id': { type: 'u32', value: 2 },
    'tokenizer.ggml.add_bos_token': { type: 'bool', value: false },
  };
  await writeGguf(path, md, tensors);
}
