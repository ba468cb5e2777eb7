/**
 * Engine benchmark: Portico's engine vs calling node-llama-cpp directly, in the same run, on a
 * generated random-weight GGUF with Qwen2.5-0.5B's shape (q8_0) in a temp dir (never committed).
 * Measures tokens/s and time to first token for 1 and 4 concurrent streams, plus a threads sweep.
 *
 *   npm run bench:engine            (ENGINE_BENCH_TOKENS=256 ENGINE_BENCH_THREADS=2 to change)
 *
 * Writes bench/engine-report.md and bench/engine-report.json.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { availableParallelism, cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeQwenShapedModel } from '../src/engine/gguf/bench-model.js';
import { Engine, defaultThreads, loadNodeLlamaCpp } from '../src/engine/engine.js';

const TOKENS = Number(process.env.ENGINE_BENCH_TOKENS ?? 256);
const MULTI_TOKENS = Number(process.env.ENGINE_BENCH_MULTI_TOKENS ?? 128);
const THREADS = Number(process.env.ENGINE_BENCH_THREADS ?? defaultThreads());
const log = (m: string): boolean => process.stderr.write(`[engine-bench] ${m}\n`);
const PROMPT = 'Explain how a multi-tenant gateway shares one small language model between teams.';

interface StreamResult {
  tokens: number;
  ttftMs: number;
  totalMs: number;
}
interface Row {
  impl: 'node-llama-cpp (raw)' | 'portico engine';
  streams: number;
  tokensPerStream: number;
  aggregateTokPerS: number;
  perStreamTokPerS: number;
  ttftMsMean: number;
  wallMs: number;
}

function summarize(impl: Row['impl'], streams: number, results: StreamResult[], wallMs: number): Row {
  const tokens = results.reduce((s, r) => s + r.tokens, 0);
  return {
    impl,
    streams,
    tokensPerStream: Math.round(tokens / streams),
    aggregateTokPerS: tokens / (wallMs / 1000),
    perStreamTokPerS: results.reduce((s, r) => s + r.tokens / (r.totalMs / 1000), 0) / streams,
    ttftMsMean: results.reduce((s, r) => s + r.ttftMs, 0) / streams,
    wallMs,
  };
}

async function main(): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'portico-engine-bench-'));
  const modelPath = join(dir, 'qwen2.5-0.5b-shaped-q8_0.gguf');
  const notes: string[] = [];
  try {
    let t = performance.now();
    await writeQwenShapedModel(modelPath);
    log('model generated');
    notes.push(`model generated in ${((performance.now() - t) / 1000).toFixed(1)} s`);
    const nlc = await loadNodeLlamaCpp();
    const llama = await nlc.getLlama({ gpu: false, build: 'never', logLevel: nlc.LlamaLogLevel.error });

    // --- raw node-llama-cpp: one model, a context with 4 sequences, evaluate() loops ---
    const model = await llama.loadModel({ modelPath });
    const prompt = model.tokenize(PROMPT);
    async function rawStreams(n: number, tokens: number, threads: number): Promise<Row> {
      log(`raw: ${n} stream(s) x ${tokens} tokens, ${threads} threads`);
      const ctx = await model.createContext({ contextSize: 1024 * n, sequences: n, threads, batchSize: 512 });
      try {
        const started = performance.now();
        const results = await Promise.all(
          Array.from({ length: n }, async (_, i) => {
            const seq = ctx.getSequence();
            const s0 = performance.now();
            let first = 0;
            let count = 0;
            for await (const _tok of seq.evaluate([...prompt], { temperature: 0, seed: i })) {
              if (count === 0) first = performance.now() - s0;
              if (++count >= tokens) break;
            }
            return { tokens: count, ttftMs: first, totalMs: performance.now() - s0 };
          }),
        );
        return summarize('node-llama-cpp (raw)', n, results, performance.now() - started);
      } finally {
        await ctx.dispose();
      }
    }

    // --- Portico's engine ---
    async function porticoStreams(engine: Engine, n: number, tokens: number): Promise<Row> {
      log(`portico: ${n} stream(s) x ${tokens} tokens`);
      const started = performance.now();
      const results = await Promise.all(
        Array.from({ length: n }, async (_, i) => {
          const s0 = performance.now();
          let first = 0;
          let count = 0;
          for await (const ev of engine.generate(engine.textTokens(PROMPT), {
            maxTokens: tokens,
            temperature: 0,
            seed: i,
            ignoreEos: true,
          })) {
            if (ev.type === 'text' && first === 0) first = performance.now() - s0;
            if (ev.type === 'done') count = ev.result.completionTokens;
          }
          return { tokens: count, ttftMs: first, totalMs: performance.now() - s0 };
        }),
      );
      return summarize('portico engine', n, results, performance.now() - started);
    }

    const rows: Row[] = [];
    // warm-up (page the weights in)
    await rawStreams(1, 8, THREADS);
    const engine = await Engine.load({
      modelPath,
      threads: THREADS,
      sequences: 4,
      contextPerSequence: 1024,
      gpu: false,
    });
    await porticoStreams(engine, 1, 8);
    // single stream: alternate raw and Portico twice and keep each one's best run, so a burst of
    // load from other processes does not land on one side only
    const best = (a: Row, b: Row) => (a.aggregateTokPerS >= b.aggregateTokPerS ? a : b);
    const rawA = await rawStreams(1, TOKENS, THREADS);
    const porA = await porticoStreams(engine, 1, TOKENS);
    const rawB = await rawStreams(1, TOKENS, THREADS);
    const porB = await porticoStreams(engine, 1, TOKENS);
    rows.push(best(rawA, rawB), best(porA, porB));
    rows.push(await rawStreams(4, MULTI_TOKENS, THREADS));
    rows.push(await porticoStreams(engine, 4, MULTI_TOKENS));
    await engine.close();

    // threads sweep (raw, single stream, short)
    const sweep: { threads: number; tokPerS: number }[] = [];
    for (const th of [1, 2, 4].filter((x) => x <= availableParallelism())) {
      const r = await rawStreams(1, 48, th);
      sweep.push({ threads: th, tokPerS: r.aggregateTokPerS });
    }
    await model.dispose();

    const raw1 = rows[0] as Row;
    const p1 = rows[1] as Row;
    const raw4 = rows[2] as Row;
    const p4 = rows[3] as Row;
    const goals = {
      singleStreamVsRaw: p1.aggregateTokPerS / raw1.aggregateTokPerS,
      fourStreamsVsSingle: p4.aggregateTokPerS / p1.aggregateTokPerS,
      fourStreamsVsRaw: p4.aggregateTokPerS / raw4.aggregateTokPerS,
      seconds256: 256 / p1.aggregateTokPerS + p1.ttftMsMean / 1000,
    };
    t = performance.now();
    const machine = {
      cpu: cpus()[0]?.model ?? 'unknown',
      cores: availableParallelism(),
      loadavg1m: loadavg()[0],
      node: process.version,
      nodeLlamaCpp: (
        JSON.parse(await readFile('node_modules/node-llama-cpp/package.json', 'utf8')) as { version: string }
      ).version,
    };
    const json = {
      date: new Date().toISOString(),
      machine,
      threads: THREADS,
      tokens: TOKENS,
      multiTokens: MULTI_TOKENS,
      rows,
      sweep,
      goals,
      notes,
    };
    await writeFile('bench/engine-report.json', JSON.stringify(json, null, 2) + '\n');
    const f = (x: number, d = 1) => x.toFixed(d);
    const md = [
      '# Engine benchmark',
      '',
      `Generated by \`npm run bench:engine\` on ${json.date}. Model: random weights with Qwen2.5-0.5B-Instruct's`,
      'shape (qwen2, 24 layers, 896 wide, 151,936 vocabulary), q8_0, generated into a temp dir. Greedy',
      `decoding, end-of-sequence ignored. Threads: ${THREADS}. Same process, same model file, same run; single-stream rows: best of two alternating runs each.`,
      '',
      `Machine: ${machine.cpu}, ${machine.cores} cores, 1-min load average at the end ${f(machine.loadavg1m ?? 0, 2)}`,
      `(the machine is shared with other engineers' builds and tests, so absolute numbers are noisy),`,
      `Node ${machine.node}, node-llama-cpp ${machine.nodeLlamaCpp}, CPU build.`,
      '',
      '| implementation | streams | tokens/stream | aggregate tok/s | per-stream tok/s | mean TTFT ms | wall s |',
      '|---|---|---|---|---|---|---|',
      ...rows.map(
        (r) =>
          `| ${r.impl} | ${r.streams} | ${r.tokensPerStream} | ${f(r.aggregateTokPerS)} | ${f(r.perStreamTokPerS)} | ${f(r.ttftMsMean, 0)} | ${f(r.wallMs / 1000, 2)} |`,
      ),
      '',
      '## Goals',
      '',
      '| goal | target | measured | |',
      '|---|---|---|---|',
      `| single stream vs raw node-llama-cpp | >= 95% | ${f(goals.singleStreamVsRaw * 100)}% | ${goals.singleStreamVsRaw >= 0.95 ? 'met' : 'NOT met'} |`,
      `| 4 streams aggregate vs single stream | >= 2.5x | ${f(goals.fourStreamsVsSingle, 2)}x | ${goals.fourStreamsVsSingle >= 2.5 ? 'met' : 'NOT met'} |`,
      `| 4 streams vs raw node-llama-cpp 4 streams | (info) | ${f(goals.fourStreamsVsRaw * 100)}% | |`,
      `| 256 tokens, single stream (TTFT + 256 / tok/s) | < 8 s | ${f(goals.seconds256, 2)} s | ${goals.seconds256 < 8 ? 'met' : 'NOT met'} |`,
      '',
      '## Threads (raw node-llama-cpp, single stream, 48 tokens)',
      '',
      '| threads | tok/s |',
      '|---|---|',
      ...sweep.map((s) => `| ${s.threads} | ${f(s.tokPerS)} |`),
      '',
      `Notes: ${notes.join('; ')}.`,
      '',
    ].join('\n');
    await writeFile('bench/engine-report.md', md);
    process.stdout.write(md);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

await main();
