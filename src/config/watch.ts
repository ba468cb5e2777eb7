/**
 * Hot reload: watch the config file and every file it references (prompt files). On change,
 * load and validate the new version; if valid, hand it to `apply` (an atomic swap); if not, log
 * every problem and keep serving the old config. Directories are watched rather than files, so
 * editors that save by renaming a temp file are seen too.
 */
import { watch, type FSWatcher } from 'node:fs';
import { basename, dirname } from 'node:path';
import { ConfigError, loadConfigFile, type LoadedConfig } from './load.js';

export interface WatchOptions {
  file: string;
  env: Record<string, string | undefined>;
  initialFiles: string[];
  /** May be async: the reload counts as applied once it resolves, as rejected if it throws. */
  apply: (loaded: LoadedConfig) => void | Promise<void>;
  onError: (problems: string, err: unknown) => void;
  debounceMs?: number;
}

export class ConfigWatcher {
  #opts: WatchOptions;
  #watchers = new Map<string, FSWatcher>();
  #names = new Set<string>();
  #timer: NodeJS.Timeout | undefined;
  #closed = false;
  #running: Promise<void> = Promise.resolve();

  constructor(opts: WatchOptions) {
    this.#opts = opts;
    this.#watchFiles(opts.initialFiles);
  }

  #watchFiles(files: string[]): void {
    this.#names = new Set(files);
    const dirs = new Set(files.map((f) => dirname(f)));
    for (const [dir, w] of this.#watchers) {
      if (!dirs.has(dir)) {
        w.close();
        this.#watchers.delete(dir);
      }
    }
    for (const dir of dirs) {
      if (this.#watchers.has(dir)) continue;
      const w = watch(dir, { persistent: false }, (_event, name) => {
        if (
          name === null ||
          [...this.#names].some((f) => dirname(f) === dir && basename(f) === name.toString())
        )
          this.#schedule();
      });
      w.on('error', () => undefined);
      this.#watchers.set(dir, w);
    }
  }

  #schedule(): void {
    if (this.#closed) return;
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => {
      this.#running = this.#running.then(async () => {
        await this.reload();
      });
    }, this.#opts.debounceMs ?? 150);
    this.#timer.unref();
  }

  /** Reload now (also used for SIGHUP). Resolves true when the new config was applied. */
  async reload(): Promise<boolean> {
    try {
      const loaded = await loadConfigFile(this.#opts.file, this.#opts.env);
      await this.#opts.apply(loaded);
      this.#watchFiles(loaded.files);
      return true;
    } catch (err) {
      this.#opts.onError(err instanceof ConfigError ? err.message : String(err), err);
      return false;
    }
  }

  close(): void {
    this.#closed = true;
    clearTimeout(this.#timer);
    for (const w of this.#watchers.values()) w.close();
    this.#watchers.clear();
  }
}
