/**
 * Generates a tiny llama-architecture GGUF whose output is known in advance, for tests (no
 * download needed). Vocabulary: SentencePiece-style, special tokens, 256 byte tokens and a few
 * words. Weights: attention and feed-forward are zero, so each position's hidden state is its
 * token embedding; embeddings put each token in a "class" direction and the output matrix maps
 * class -> next token, so greedy (or any seeded) decoding always continues the cycle
 * `red green blue red green blue ...`, whatever the prompt.
 */
import { mulberry32 } from '../../lib/prng.js';
import { GgmlType } from './format.js';
import { f32Bytes, writeGguf, type GgufTensorSpec, type GgufValue } from './writer.js';

export const TINY_CYCLE = ['red', 'green', 'blue'] as const;
export const TINY_CHAT_TEMPLATE =
  "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

/** The text the tiny model produces for `n` tokens (words separated by spaces). */
export function tinyExpectedText(n: number): string {
  const words: string[] = [];
  for (let i = 0; i < n; i++) words.push(TINY_CYCLE[i % 3] as string);
  return words.join(' ');
}

export async function writeTinyModel(path: string, opts: { seed?: number } = {}): Promise<void> {
  const nEmbd = 64;
  const nHead = 4;
  const nFf = 128;
  const nLayer = 1;
  const tokens: string[] = ['<unk>', '<s>', '</s>', '<|im_start|>', '<|im_end|>'];
  const types: number[] = [2, 3, 3, 3, 3];
  for (let b = 0; b < 256; b++) {
    tokens.push(`<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`);
    types.push(6);
  }
  const words = ['▁red', '▁green', '▁blue', '▁', '▁the', '▁hello', '▁world', '▁is', '▁a'];
  for (const w of words) {
    tokens.push(w);
    types.push(1);
  }
  const nVocab = tokens.length;
  const scores = tokens.map((t, i) => (types[i] === 1 ? -i / 1000 : 0));
  const id = (t: string) => tokens.indexOf(t);
  // class of each token: 0 red, 1 green, 2 blue, 3 anything else
  const cls = (i: number) => (i === id('▁red') ? 0 : i === id('▁green') ? 1 : i === id('▁blue') ? 2 : 3);
  const rnd = mulberry32(opts.seed ?? 7);
  const embd = new Float32Array(nEmbd * nVocab);
  for (let i = 0; i < nVocab; i++) {
    embd[i * nEmbd + cls(i)] = 1;
    for (let d = 4; d < nEmbd; d++) embd[i * nEmbd + d] = (rnd() - 0.5) * 0.1;
  }
  // output row j scores token j: red follows blue and "other", green follows red, blue follows green
  const out = new Float32Array(nEmbd * nVocab);
  const row = (t: string) => id(t) * nEmbd;
  out[row('▁green') + 0] = 10;
  out[row('▁blue') + 1] = 10;
  out[row('▁red') + 2] = 10;
  out[row('▁red') + 3] = 10;
  const ones = (n: number) => () => f32Bytes(new Float32Array(n).fill(1));
  const zeros = (n: number) => () => f32Bytes(new Float32Array(n));
  const tensors: GgufTensorSpec[] = [
    { name: 'token_embd.weight', dims: [nEmbd, nVocab], type: GgmlType.F32, data: () => f32Bytes(embd) },
    { name: 'output_norm.weight', dims: [nEmbd], type: GgmlType.F32, data: ones(nEmbd) },
    { name: 'output.weight', dims: [nEmbd, nVocab], type: GgmlType.F32, data: () => f32Bytes(out) },
  ];
  for (let l = 0; l < nLayer; l++) {
    const p = `blk.${l}.`;
    tensors.push(
      { name: p + 'attn_norm.weight', dims: [nEmbd], type: GgmlType.F32, data: ones(nEmbd) },
      { name: p + 'attn_q.weight', dims: [nEmbd, nEmbd], type: GgmlType.F32, data: zeros(nEmbd * nEmbd) },
      { name: p + 'attn_k.weight', dims: [nEmbd, nEmbd], type: GgmlType.F32, data: zeros(nEmbd * nEmbd) },
      { name: p + 'attn_v.weight', dims: [nEmbd, nEmbd], type: GgmlType.F32, data: zeros(nEmbd * nEmbd) },
      {
        name: p + 'attn_output.weight',
        dims: [nEmbd, nEmbd],
        type: GgmlType.F32,
        data: zeros(nEmbd * nEmbd),
      },
      { name: p + 'ffn_norm.weight', dims: [nEmbd], type: GgmlType.F32, data: ones(nEmbd) },
      { name: p + 'ffn_gate.weight', dims: [nEmbd, nFf], type: GgmlType.F32, data: zeros(nEmbd * nFf) },
      { name: p + 'ffn_up.weight', dims: [nEmbd, nFf], type: GgmlType.F32, data: zeros(nEmbd * nFf) },
      { name: p + 'ffn_down.weight', dims: [nFf, nEmbd], type: GgmlType.F32, data: zeros(nEmbd * nFf) },
    );
  }
  const md: Record<string, GgufValue> = {
    'general.architecture': { type: 'string', value: 'llama' },
    'general.name': { type: 'string', value: 'portico-tiny-test' },
    'llama.context_length': { type: 'u32', value: 4096 },
    'llama.embedding_length': { type: 'u32', value: nEmbd },
    'llama.block_count': { type: 'u32', value: nLayer },
    'llama.feed_forward_length': { type: 'u32', value: nFf },
    'llama.attention.head_count': { type: 'u32', value: nHead },
    'llama.attention.head_count_kv': { type: 'u32', value: nHead },
    'llama.rope.dimension_count': { type: 'u32', value: nEmbd / nHead },
    'llama.attention.layer_norm_rms_epsilon': { type: 'f32', value: 1e-5 },
    'llama.vocab_size': { type: 'u32', value: nVocab },
    'tokenizer.ggml.model': { type: 'string', value: 'llama' },
    'tokenizer.ggml.tokens': { type: 'string[]', value: tokens },
    'tokenizer.ggml.scores': { type: 'f32[]', value: scores },
    'tokenizer.ggml.token_type': { type: 'i32[]', value: types },
    'tokenizer.ggml.unknown_token_id': { type: 'u32', value: 0 },
    'tokenizer.ggml.bos_token_id': { type: 'u32', value: 1 },
    'tokenizer.ggml.eos_token_id': { type: 'u32', value: 2 },
    'tokenizer.ggml.add_bos_token': { type: 'bool', value: false },
    'tokenizer.chat_template': { type: 'string', value: TINY_CHAT_TEMPLATE },
  };
  await writeGguf(path, md, tensors);
}
