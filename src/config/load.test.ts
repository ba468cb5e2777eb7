import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, writeFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildConfig, ConfigError, interpolateEnv, loadConfigFile } from './load.js';
import { sha256Hex } from '../lib/hash.js';

describe('config loading', () => {
  it('interpolates ${VAR} and ${VAR:-default}, typed when the whole value is a reference', () => {
    const problems: Array<{ path: string; message: string }> = [];
    const out = interpolateEnv(
      {
        a: '${X}',
        b: 'pre-${X}-post',
        c: '${MISSING:-fallback}',
        d: '${PORT}',
        e: '$${literal}',
        f: ['${X}'],
      },
      { X: 'x1', PORT: '8080' },
      problems,
    );
    assert.deepEqual(out, { a: 'x1', b: 'pre-x1-post', c: 'fallback', d: 8080, e: '${literal}', f: ['x1'] });
    assert.deepEqual(problems, []);
  });

  it('reports an unset variable with its path', () => {
    const problems: Array<{ path: string; message: string }> = [];
    interpolateEnv({ models: { m: { backends: [{ api_key: '${OPENAI_API_KEY}' }] } } }, {}, problems);
    assert.equal(problems[0]?.path, 'models.m.backends[0].api_key');
    assert.match(problems[0]?.message ?? '', /OPENAI_API_KEY is not set/);
  });

  it('rejects unknown keys and bad values, listing every problem with its path', async () => {
    await assert.rejects(
      buildConfig({
        server: { port: 'eighty', nope: true },
        tenants: [{ id: 'Bad Id', api_keys: [{ sha256: 'xyz' }] }],
        models: { m: { backends: [{ provider: 'carrier-pigeon' }] } },
      }),
      (e: unknown) => {
        assert.ok(e instanceof ConfigError);
        const paths = e.problems.map((p) => p.path);
        for (const p of [
          'server',
          'server.port',
          'tenants[0].id',
          'tenants[0].api_keys[0].sha256',
          'models.m.backends[0].provider',
        ]) {
          assert.ok(paths.includes(p), `expected a problem at ${p}; got ${paths.join(', ')}`);
        }
        return true;
      },
    );
  });

  it('checks cross references: allowed models, duplicate ids', async () => {
    await assert.rejects(
      buildConfig({
        tenants: [{ id: 'a', allowed_models: ['ghost'] }, { id: 'a' }],
        models: {
          m: {
            backends: [
              { provider: 'sim', id: 'x' },
              { provider: 'sim', id: 'x' },
            ],
          },
        },
      }),
      (e: unknown) => {
        assert.ok(e instanceof ConfigError);
        const text = e.message;
        assert.match(text, /tenants\[0\]\.allowed_models\[0\]: unknown model alias "ghost"/);
        assert.match(text, /tenants\[1\]\.id: duplicate tenant id "a"/);
        assert.match(text, /duplicate backend id "x"/);
        return true;
      },
    );
  });

  it('a team route path that a built-in route (or its alias) or another route has is an error', async () => {
    // Review: such a path passed the check and then crashed the start ("Method 'POST' already
    // declared"), or was skipped without a word (/v1/chat/completions and the like).
    const taken = {
      a: '/v1/responses',
      b: '/responses',
      c: '/ask',
      d: '/v1/messages/count_tokens',
      e: '/messages/count_tokens/',
      f: '/v1/chat/completions',
      g: '/chat/completions',
      h: '/api/other/predict',
      i: '/v1/models/gpt',
      j: '/admin/tenants/acme/keys',
      k: '/console/anything',
    };
    const routes: Record<string, unknown> = {
      sql: { model: 'm', path: '/v1/text2sql' },
      sql2: { model: 'm', path: '/v1/text2sql' },
      free: { model: 'm', path: '/v1/ask' },
    };
    for (const [team, path] of Object.entries(taken)) routes[team] = { model: 'm', path };
    await assert.rejects(
      buildConfig({ models: { m: { backends: [{ provider: 'sim' }] } }, routes }),
      (e: unknown) => {
        assert.ok(e instanceof ConfigError);
        const text = e.message;
        for (const [team, path] of Object.entries(taken))
          assert.match(
            text,
            new RegExp(
              `routes\\.${team}\\.path: ${path} is .*built-in route .*: give this route another path \\(e\\.g\\. /teams/${team}\\)`,
            ),
            team,
          );
        assert.match(
          text,
          /routes\.b\.path: \/responses is an alias of the built-in route POST \/v1\/responses/,
        );
        assert.match(text, /routes\.h\.path: .* the built-in route POST \/api\/:team\/predict/);
        assert.match(text, /routes\.sql2\.path: \/v1\/text2sql is already the path of route sql/);
        assert.doesNotMatch(text, /routes\.(sql|free)\.path/);
        return true;
      },
    );
    // One route per free path is fine.
    await buildConfig({
      models: { m: { backends: [{ provider: 'sim' }] } },
      routes: { sql: { model: 'm', path: '/v1/text2sql' }, free: { model: 'm', path: '/v1/ask' } },
    });
  });

  it('a split alias is no fallback, and has no fallbacks of its own (dispatch would skip them)', async () => {
    await assert.rejects(
      buildConfig({
        models: {
          primary: { backends: [{ provider: 'sim' }], fallbacks: ['ab'] },
          ab: {
            split: [
              { model: 'v1', weight: 1 },
              { model: 'v2', weight: 1 },
            ],
            fallbacks: ['v1'],
          },
          v1: { backends: [{ provider: 'sim' }] },
          v2: { backends: [{ provider: 'sim' }] },
        },
      }),
      (e: unknown) => {
        assert.ok(e instanceof ConfigError);
        assert.match(
          e.message,
          /models\.primary\.fallbacks\[0\]: "ab" is a split alias: a fallback must be a model alias with backends; name one of its variants \(v1, v2\) instead/,
        );
        assert.match(e.message, /models\.ab\.fallbacks: a split alias has no fallbacks of its own/);
        return true;
      },
    );
  });

  it('an admin token that is also a tenant key is an error (review, 2026-12-07)', async () => {
    await assert.rejects(
      buildConfig({
        admin: { token: 'sk-both-admin-and-tenant' },
        tenants: [{ id: 'a', api_keys: [{ value: 'sk-both-admin-and-tenant' }] }],
        models: { m: { backends: [{ provider: 'sim' }] } },
      }),
      (e: unknown) => {
        assert.ok(e instanceof ConfigError);
        assert.match(
          e.message,
          /admin\.token: admin\.token is also the API key at tenants\[0\]\.api_keys\[0\] \(tenant a\)/,
        );
        assert.ok(!e.message.includes('sk-both-admin-and-tenant'), 'the secret is never shown');
        return true;
      },
    );
  });

  it('an admin token no Authorization header can carry (whitespace, control or non-ASCII characters) is an error (review, 2026-12-14)', async () => {
    // Before: admin.token "secret-token\n" (a secret file's newline through ${PORTICO_ADMIN_TOKEN})
    // passed, and no request could ever match it: the admin API and the console were locked out.
    const models = { m: { backends: [{ provider: 'sim' }] } };
    const cases: Array<[string, RegExp]> = [
      ['secret-token\n', /ends with a newline: .*strip it/],
      ['\tsecret-token', /starts with a tab/],
      ['secret token', /contains a space/],
      ['secret\u0000token', /contains a control character \(U\+0000\)/],
      ['sécret-token', /contains a non-ASCII character/],
    ];
    for (const [token, message] of cases)
      await assert.rejects(buildConfig({ admin: { token }, models }), (e: unknown) => {
        assert.ok(e instanceof ConfigError);
        const p = e.problems.find((x) => x.path === 'admin.token');
        assert.ok(p, e.message);
        assert.match(p.message, message);
        assert.match(p.message, /Authorization: Bearer/);
        assert.ok(!e.message.includes(token.trim()), 'the token is never shown');
        return true;
      });
    // Printable ASCII is fine, and empty still means "generate one".
    await buildConfig({ admin: { token: 'A-Za-z0-9._~+/=!#$%&*' }, models });
    await buildConfig({ admin: { token: '' }, models });
  });

  it('an API key declared twice (under two tenants or in one) and a duplicate key id are errors', async () => {
    const models = { m: { backends: [{ provider: 'sim' }] } };
    const digest = sha256Hex('sk-shared');
    // A key without an id is `{tenant}-cfg-` + 12 hex of its sha256, whatever its place in the list.
    const derived = `a-cfg-${digest.slice(0, 12)}`;
    await assert.rejects(
      buildConfig({
        tenants: [
          { id: 'a', api_keys: [{ value: 'sk-shared' }, { value: 'sk-a2', id: derived }] },
          { id: 'b', api_keys: [{ value: 'sk-shared' }] },
          {
            id: 'c',
            api_keys: [{ sha256: digest }, { value: 'sk-c', id: 'x' }, { value: 'sk-c2', id: 'x' }],
          },
          { id: 'd', api_keys: [{ value: 'sk-d' }, { value: 'sk-d' }] },
        ],
        models,
      }),
      (e: unknown) => {
        assert.ok(e instanceof ConfigError);
        const text = e.message;
        assert.match(
          text,
          /tenants\[1\]\.api_keys\[0\]\.value: the same API key as tenants\[0\]\.api_keys\[0\] \(tenant a\): a key belongs to one tenant only/,
        );
        assert.match(
          text,
          /tenants\[2\]\.api_keys\[0\]\.sha256: the same API key as tenants\[0\]\.api_keys\[0\]/,
        );
        assert.match(
          text,
          /tenants\[3\]\.api_keys\[1\]\.value: the same API key as tenants\[3\]\.api_keys\[0\]: list each key once/,
        );
        assert.ok(
          text.includes(`tenants[0].api_keys[1].id: duplicate key id "${derived}" in tenant a`),
          text,
        );
        assert.match(text, /tenants\[2\]\.api_keys\[2\]\.id: duplicate key id "x" in tenant c/);
        assert.ok(!text.includes('sk-shared'), 'the key itself is never shown');
        return true;
      },
    );
    // The same key id in two tenants is fine (usage is per tenant and key).
    await buildConfig({
      tenants: [
        { id: 'a', api_keys: [{ value: 'sk-a', id: 'ci' }] },
        { id: 'b', api_keys: [{ value: 'sk-b', id: 'ci' }] },
      ],
      models,
    });
  });

  it('a key id the state stores cannot hold (NUL, unpaired surrogate, empty) is an error with its path', async () => {
    // A NUL in a key id made every Postgres ledger batch holding that key's records fail, and the
    // writer retried the batch for ever: no tenant's usage was recorded after it (review, 2026-12-14).
    await assert.rejects(
      buildConfig({
        tenants: [
          {
            id: 'a',
            api_keys: [
              { value: 'sk-a1', id: 'ci\u0000key' },
              { value: 'sk-a2', id: 'x\ud800' },
              { sha256: sha256Hex('sk-a3'), id: '' },
            ],
          },
        ],
        models: { m: { backends: [{ provider: 'sim' }] } },
      }),
      (e: unknown) => {
        assert.ok(e instanceof ConfigError);
        const byPath = new Map(e.problems.map((p) => [p.path, p.message]));
        assert.match(byPath.get('tenants[0].api_keys[0].id') ?? '', /NUL character or an unpaired surrogate/);
        assert.match(byPath.get('tenants[0].api_keys[1].id') ?? '', /NUL character or an unpaired surrogate/);
        assert.match(byPath.get('tenants[0].api_keys[2].id') ?? '', /leave id out/);
        return true;
      },
    );
    // Any other text is still a valid id (upper case, spaces, non-ASCII).
    await buildConfig({
      tenants: [{ id: 'a', api_keys: [{ value: 'sk-a1', id: 'CI key é 🚀' }] }],
      models: { m: { backends: [{ provider: 'sim' }] } },
    });
  });

  it("a tenant's text the tenant store cannot hold is a config error with its path, not a failed start", async () => {
    // Before, `config check` passed and the start failed with a StateInvalidInputError naming no
    // config path (review, 2026-12-08).
    const dir = await mkdtemp(join(tmpdir(), 'portico-cfg-nul-'));
    try {
      await writeFile(join(dir, 'p.txt'), 'Be brief.\u0000');
      await assert.rejects(
        buildConfig(
          {
            tenants: [
              {
                id: 'a',
                display_name: 'A\u0000',
                company: 'x\ud800',
                industry: 'ok',
                system_prompt: 'p\u0000',
              },
            ],
            models: { m: { backends: [{ provider: 'sim' }] } },
          },
          { baseDir: dir },
        ),
        (e: unknown) => {
          assert.ok(e instanceof ConfigError);
          const paths = e.problems.map((p) => p.path).sort();
          assert.deepEqual(paths, [
            'tenants[0].company',
            'tenants[0].display_name',
            'tenants[0].system_prompt',
          ]);
          return true;
        },
      );
      await assert.rejects(
        buildConfig(
          {
            tenants: [{ id: 'b', system_prompt_file: 'p.txt' }],
            models: { m: { backends: [{ provider: 'sim' }] } },
          },
          { baseDir: dir },
        ),
        (e: unknown) => {
          assert.ok(e instanceof ConfigError);
          assert.deepEqual(
            e.problems.map((p) => p.path),
            ['tenants[0].system_prompt_file'],
          );
          return true;
        },
      );
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('rate limits outside their bounds are errors (config tenants, keys, per-IP)', async () => {
    await assert.rejects(
      buildConfig({
        admission: { per_ip: { requests_per_second: 1e-300 } },
        tenants: [
          {
            id: 'a',
            limits: { requests_per_second: 1e308, tokens_per_minute: 1e15 },
            api_keys: [{ value: 'sk-a', limits: { requests_per_second: 1, burst: 1e15 } }],
          },
        ],
        models: { m: { backends: [{ provider: 'sim' }] } },
      }),
      (e: unknown) => {
        assert.ok(e instanceof ConfigError);
        const text = e.message;
        assert.match(text, /admission\.per_ip\.requests_per_second: give at least 0\.000001 requests\/s/);
        assert.match(text, /tenants\[0\]\.limits\.requests_per_second: give at most 1000000 requests\/s/);
        assert.match(text, /tenants\[0\]\.limits\.tokens_per_minute: give at most 1000000000000 tokens\/min/);
        assert.match(text, /tenants\[0\]\.api_keys\[0\]\.limits\.burst: give a bucket of at most 1000000000/);
        return true;
      },
    );
    await buildConfig({
      tenants: [{ id: 'a', limits: { requests_per_second: 1e-6, burst: 1e9, tokens_per_minute: 1e12 } }],
      models: { m: { backends: [{ provider: 'sim' }] } },
    });
  });

  it('reads system_prompt_file relative to the config file; a missing file is a problem', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'portico-cfg-'));
    try {
      await writeFile(join(dir, 'p.txt'), '  Be helpful.\n');
      await writeFile(
        join(dir, 'c.yaml'),
        'tenants:\n  - id: t\n    system_prompt_file: p.txt\n  - id: u\n    system_prompt_file: missing.txt\n',
      );
      await assert.rejects(
        loadConfigFile(join(dir, 'c.yaml'), {}),
        /tenants\[1\]\.system_prompt_file: cannot read missing\.txt/,
      );
      await writeFile(join(dir, 'c.yaml'), 'tenants:\n  - id: t\n    system_prompt_file: p.txt\n');
      const loaded = await loadConfigFile(join(dir, 'c.yaml'), {});
      assert.equal(loaded.prompts.get('t'), 'Be helpful.');
      assert.equal(loaded.files.length, 2);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('reports YAML syntax errors with a line', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'portico-cfg-'));
    try {
      await writeFile(join(dir, 'c.yaml'), 'server:\n  port: 1\n  port: 2\n');
      await assert.rejects(loadConfigFile(join(dir, 'c.yaml'), {}), /line 3/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
