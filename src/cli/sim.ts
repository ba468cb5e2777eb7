/** `portico sim`: the backend simulator (options declared in program.ts). */
import { buildSimServer } from '../sim/server.js';
import type { CliIO } from './common.js';

export interface SimCliOptions {
  port: number;
  host: string;
  mode?: 'lorem' | 'echo';
  ttftMs?: number;
  itlMs?: number;
  outputTokens?: number;
  model?: string[];
}

export async function runSim(o: SimCliOptions, io: CliIO): Promise<void> {
  const sim: Record<string, unknown> = {};
  if (o.mode) sim.mode = o.mode;
  if (o.ttftMs !== undefined) sim.ttft_ms = o.ttftMs;
  if (o.itlMs !== undefined) sim.itl_ms = o.itlMs;
  if (o.outputTokens !== undefined) sim.output_tokens = o.outputTokens;
  const { app } = buildSimServer({ sim, ...(o.model ? { models: o.model } : {}) });
  const url = await app.listen({ host: o.host, port: o.port });
  io.err(`Portico simulator (OpenAI API) listening on ${url}/v1`);
  const stop = (): void => void app.close().then(() => process.exit(0));
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}
