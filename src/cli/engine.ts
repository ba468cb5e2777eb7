/** `portico engine --model M [--port N] [--host H] [--threads N] [--sequences N] [--context N] [--gpu auto|off]`. */
import { parseArgs } from 'node:util';
import { parsePort, UsageError, type CliIO } from './common.js';

function posInt(v: string | undefined, flag: string): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new UsageError(`${flag} must be a positive integer, got "${v}"`);
  return n;
}

export async function runEngineCommand(argv: string[], io: CliIO): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      model: { type: 'string', short: 'm' },
      port: { type: 'string', short: 'p' },
      host: { type: 'string' },
      threads: { type: 'string' },
      sequences: { type: 'string' },
      context: { type: 'string' },
      gpu: { type: 'string' },
      'models-dir': { type: 'string' },
    },
    strict: true,
  });
  if (!values.model) throw new UsageError('--model is required (a GGUF path or hf:owner/repo:QUANT)');
  if (values.gpu !== undefined && values.gpu !== 'auto' && values.gpu !== 'off')
    throw new UsageError('--gpu must be auto or off');
  const threads = posInt(values.threads, '--threads');
  const sequences = posInt(values.sequences, '--sequences');
  const context = posInt(values.context, '--context');
  const { resolveModel } = await import('../engine/resolve.js');
  const { Engine } = await import('../engine/engine.js');
  const { buildEngineServer } = await import('../engine/server.js');
  let lastPct = -1;
  const modelPath = await resolveModel(values.model, {
    ...(values['models-dir'] ? { cacheDir: values['models-dir'] } : {}),
    env: io.env,
    onProgress: (done, total) => {
      const pct = total > 0 ? Math.floor((done / total) * 100) : 0;
      if (pct !== lastPct) {
        lastPct = pct;
        io.err(
          `downloading ${values.model}: ${pct}% (${(done / 2 ** 20).toFixed(0)} of ${(total / 2 ** 20).toFixed(0)} MiB)`,
        );
      }
    },
  });
  const engine = await Engine.load({
    modelPath,
    ...(threads ? { threads } : {}),
    ...(sequences ? { sequences } : {}),
    ...(context ? { contextPerSequence: context } : {}),
    gpu: values.gpu === 'off' ? false : 'auto',
  });
  const app = buildEngineServer(engine);
  const url = await app.listen({ host: values.host ?? '127.0.0.1', port: parsePort(values.port) ?? 5001 });
  io.err(
    `Portico engine: ${engine.modelName} (${modelPath}), ${engine.threads} threads, ${engine.sequences} sequences, listening on ${url} (OpenAI API under ${url}/v1)`,
  );
  const stop = (): void => void app.close().then(() => process.exit(0));
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}
