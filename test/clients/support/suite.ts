/**
 * The client-compatibility suite's harness: one gateway in front of three provider kinds, each with
 * a fake upstream on loopback that records what it receives — the simulator in-process (`sim`), the
 * simulator over HTTP as an OpenAI-compatible server (`openai-compatible`), and a fake Anthropic
 * API (`anthropic`). Cases record their outcome per provider; the results (test-results/clients/)
 * render the compatibility table in docs/providers.md (scripts/clients-table.ts).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import {
  renderClientSection,
  sectionOf,
  type CaseResult,
  type ClientResults,
  type ProviderColumn,
} from '../../../scripts/clients-table.js';
import { startTestGateway, startTestSim, type TestGateway, type TestSim } from '../../support/gateway.js';
import { startFakeAnthropic } from './fake-anthropic.js';

export const KEY = 'sk-clients-suite';

export const MODELS: Record<ProviderColumn, string> = {
  sim: 'sim-model',
  'openai-compatible': 'oai-model',
  anthropic: 'claude-model',
};

export interface Suite {
  gateway: TestGateway;
  /** Gateway base URL with /v1 (OpenAI SDKs). */
  baseURL: string;
  /** Gateway origin (Anthropic SDKs add /v1 themselves). */
  url: string;
  oai: TestSim;
  anthropic: Awaited<ReturnType<typeof startFakeAnthropic>>;
  close: () => Promise<void>;
}

export async function startSuite(): Promise<Suite> {
  const oai = await startTestSim({ sim: { ttft_ms: 0, itl_ms: 0 } });
  const anthropic = await startFakeAnthropic();
  const gateway = await startTestGateway({
    server: { host: '127.0.0.1', port: 0, cors: { origins: ['https://app.example.com'] } },
    logging: { level: 'silent' },
    admin: { token: 'test-admin-token' },
    state: { kind: 'memory' },
    tenants: [
      {
        id: 'clients',
        display_name: 'Clients suite',
        prompt_policy: 'none',
        api_keys: [{ value: KEY }],
      },
    ],
    models: {
      [MODELS.sim]: { backends: [{ id: 'sim', provider: 'sim', sim: { ttft_ms: 0, itl_ms: 0 } }] },
      [MODELS['openai-compatible']]: {
        backends: [
          {
            id: 'oai',
            provider: 'openai',
            base_url: oai.baseURL,
            api_key: 'sk-upstream',
            model: 'upstream-model',
          },
        ],
      },
      [MODELS.anthropic]: {
        backends: [
          {
            id: 'claude',
            provider: 'anthropic',
            base_url: anthropic.url,
            api_key: 'sk-ant-upstream',
            model: 'claude-fake',
          },
        ],
        pricing: {
          input_per_million: 3,
          output_per_million: 15,
          cache_read_per_million: 0.3,
          cache_write_per_million: 3.75,
        },
      },
    },
  });
  return {
    gateway,
    baseURL: gateway.baseURL,
    url: gateway.url,
    oai,
    anthropic,
    close: async () => {
      await gateway.close();
      await oai.close();
      await anthropic.close();
    },
  };
}

/** Records case outcomes for one client and checks its committed table section at the end. */
export class ClientCases {
  readonly #results: ClientResults;

  constructor(client: string, title: string) {
    this.#results = { client, title, cases: [] };
  }

  /** A case on one provider kind: a test whose outcome lands in the table (rows in declaration order). */
  case(feature: string, provider: ProviderColumn, fn: () => Promise<void>, note?: string): void {
    const rec: CaseResult = { feature, provider, status: 'fail', ...(note ? { note } : {}) };
    this.#results.cases.push(rec);
    test(`${this.#results.client}: ${feature} [${provider}]`, async () => {
      await fn();
      rec.status = 'pass';
    });
  }

  /** A feature that has no meaning on a provider kind; the note says why (shown in the table). */
  notApplicable(feature: string, provider: ProviderColumn, note: string): void {
    this.#results.cases.push({ feature, provider, status: 'n/a', note });
  }

  /** Last test of a file: write the results and compare the committed table section with them. */
  finish(): void {
    test(`${this.#results.client}: docs/providers.md compatibility table is current`, () => {
      const dir = fileURLToPath(new URL('../../../test-results/clients/', import.meta.url));
      mkdirSync(dir, { recursive: true });
      writeFileSync(`${dir}${this.#results.client}.json`, JSON.stringify(this.#results, null, 2));
      const doc = readFileSync(fileURLToPath(new URL('../../../docs/providers.md', import.meta.url)), 'utf8');
      assert.equal(
        sectionOf(doc, this.#results.client),
        renderClientSection(this.#results),
        'docs/providers.md is out of date: run the suite (node scripts/run-tests.mjs test/clients), then `npm run docs`',
      );
    });
  }
}
