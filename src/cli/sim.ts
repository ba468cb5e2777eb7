/** `portico sim [--port N] [--host H] [--mode lorem|echo] [--ttft-ms N] [--itl-ms N] [--output-tokens N]`. */
import { parseArgs } from 'node:util';
import { buildSimServer } from '../sim/server.js';
import { parsePort, UsageError, type CliIO } from './common.js';

function num(v: string | undefined, flag: string): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0) throw new UsageError(`${flag} must be a non-negative number, got "${v}"`);
  return n;
}

export async function runSimCommand(argv: string[], io: CliIO): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      port: { type: 'string', short: 'p' },
      host: { type: 'string' },
      mode: { type: 'string' },
      'ttft-ms': { type: 'string' },
      'itl-ms': { type: 'string' },
      'output-tokens': { type: 'string' },
      model: { type: 'string', multiple: true },
    },
    strict: true,
  });
  if (values.mode !== undefined && values.mode !== 'lorem' && values.mode !== 'echo')
    throw new UsageError('--mode must be lorem or echo');
  const sim: Record<string, unknown> = {};
  if (values.mode) sim.mode = values.mode;
  const ttft = num(values['ttft-ms'], '--ttft-ms');
  const itl = num(values['itl-ms'], '--itl-ms');
  const out = num(values['output-tokens'], '--output-tokens');
  if (ttft !== undefined) sim.ttft_ms = ttft;
  if (itl !== undefined) sim.itl_ms = itl;
  if (out !== undefined) sim.output_tokens = Math.max(1, Math.round(out));
  const { app } = buildSimServer({ sim, ...(values.model ? { models: values.model } : {}) });
  const url = await app.listen({ host: values.host ?? '127.0.0.1', port: parsePort(values.port) ?? 9000 });
  io.err(`Portico simulator (OpenAI API) listening on ${url}/v1`);
  const stop = (): void => void app.close().then(() => process.exit(0));
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}
