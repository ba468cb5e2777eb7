/** `portico config check FILE`: validate a config and print every problem with its path. */
import { ConfigError, loadConfigFile } from '../config/load.js';
import { UsageError, type CliIO } from './common.js';

export async function runConfigCommand(argv: string[], io: CliIO): Promise<number> {
  const [sub, file] = argv;
  if (sub !== 'check' || !file) throw new UsageError('usage: portico config check FILE');
  try {
    const loaded = await loadConfigFile(file, io.env);
    const c = loaded.config;
    const backends = Object.values(c.models).reduce((n, m) => n + m.backends.length, 0);
    io.out(
      `ok: ${file}: ${c.tenants.length} tenant(s), ${Object.keys(c.models).length} model(s), ${backends} backend(s)`,
    );
    return 0;
  } catch (err) {
    if (err instanceof ConfigError) {
      io.out(err.message);
      return 1;
    }
    throw err;
  }
}
