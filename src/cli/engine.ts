/** `portico engine`: the built-in engine behind an OpenAI API (options declared in program.ts). */
import type { CliIO } from './common.js';
import { downloadProgress } from '../lib/progress.js';

export interface EngineCliOptions {
  model: string;
  port: number;
  host: string;
  threads?: number;
  sequences?: number;
  context?: number;
  gpu: 'auto' | 'off';
  modelsDir?: string;
}

export async function runEngine(o: EngineCliOptions, io: CliIO): Promise<void> {
  const { resolveModel } = await import('../engine/resolve.js');
  const { Engine } = await import('../engine/engine.js');
  const { buildEngineServer } = await import('../engine/server.js');
  const progress = downloadProgress(
    `downloading ${o.model}`,
    (s) => process.stderr.write(s),
    process.stderr.isTTY === true,
  );
  const modelPath = await resolveModel(o.model, {
    ...(o.modelsDir ? { cacheDir: o.modelsDir } : {}),
    env: io.env,
    onProgress: (done, total) => progress.update(done, total),
  });
  progress.finish();
  const engine = await Engine.load({
    modelPath,
    ...(o.threads ? { threads: o.threads } : {}),
    ...(o.sequences ? { sequences: o.sequences } : {}),
    ...(o.context ? { contextPerSequence: o.context } : {}),
    gpu: o.gpu === 'off' ? false : 'auto',
  });
  const app = buildEngineServer(engine);
  const url = await app.listen({ host: o.host, port: o.port });
  io.err(
    `Portico engine: ${engine.modelName} (${modelPath}), ${engine.threads} threads, ${engine.sequences} sequences, listening on ${url} (OpenAI API under ${url}/v1)`,
  );
  const stop = (): void => void app.close().then(() => process.exit(0));
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}
