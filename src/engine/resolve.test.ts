import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { findCached, resolveModel } from './resolve.js';

describe('model references offline', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'portico-resolve-'));
  });
  after(() => rm(dir, { recursive: true, force: true }));

  it('the offline message names the file to put in the cache directory, and where to get it', async () => {
    const cacheDir = join(dir, 'empty');
    await assert.rejects(
      resolveModel('hf:Qwen/Qwen2.5-0.5B-Instruct-GGUF:Q4_K_M', { cacheDir, endpoint: 'http://127.0.0.1:9' }),
      (e: unknown) => {
        assert.ok(e instanceof Error);
        assert.match(
          e.message,
          new RegExp(
            `Download the Q4_K_M GGUF file from http://127\\.0\\.0\\.1:9/Qwen/Qwen2\\.5-0\\.5B-Instruct-GGUF elsewhere and put it in ${cacheDir} as qwen2\\.5-0\\.5b-instruct-q4_k_m\\.gguf \\(a \\.gguf file whose name contains "qwen2\\.5-0\\.5b-instruct" and "q4_k_m"\\), or use a local GGUF path\\.$`,
          ),
        );
        return true;
      },
    );
    await assert.rejects(
      resolveModel('hf:acme/Models/sub/tiny-q8.gguf', { cacheDir, endpoint: 'http://127.0.0.1:9' }),
      /Download http:\/\/127\.0\.0\.1:9\/acme\/Models\/resolve\/main\/sub\/tiny-q8\.gguf elsewhere and put it in .* as tiny-q8\.gguf, or use a local GGUF path\.$/,
    );
  });

  it('a file reference is found in the cache under its own name', async () => {
    await writeFile(join(dir, 'tiny-q8.gguf'), 'x');
    assert.equal(await findCached('hf:acme/Models/sub/tiny-q8.gguf', dir), join(dir, 'tiny-q8.gguf'));
  });
});
