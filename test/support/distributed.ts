/**
 * Test support: one gateway on distributed state (Redis + Postgres, a schema and a key prefix of
 * its own) for a describe block — started in `before`, closed and its schema dropped in `after`.
 * Without Redis or Postgres the block's tests skip, loudly; under CI=true that is an error.
 */
import { after, before } from 'node:test';
import { randomBytes } from 'node:crypto';
import { demoConfig, startTestGateway, type TestGateway } from './gateway.js';
import { dropTestState, reachablePostgres, redisUnreachable } from './processes.js';

export const TEST_REDIS_URL = process.env.PORTICO_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

export interface DistributedGateway {
  /** Why the block's tests skip (no Redis or Postgres here), once `before` ran. */
  skip: string | undefined;
  gw: TestGateway | undefined;
}

/** `name`: a short word for the schema, the key prefix and the skip message. */
export function useDistributedGateway(name: string): DistributedGateway {
  const state: DistributedGateway = { skip: undefined, gw: undefined };
  const tag = randomBytes(4).toString('hex');
  const schema = `portico_${name}_${tag}`;
  let pgUrl = '';
  before(async () => {
    const pg = await reachablePostgres();
    if ('reason' in pg) state.skip = pg.reason;
    else {
      pgUrl = pg.url;
      state.skip = await redisUnreachable(TEST_REDIS_URL);
    }
    if (state.skip) {
      if (process.env.CI === 'true') throw new Error(`CI=true but ${state.skip}`);
      console.warn(`SKIPPED ${name} test: ${state.skip}`);
      return;
    }
    state.gw = await startTestGateway(
      demoConfig({
        state: {
          kind: 'distributed',
          redis: { url: TEST_REDIS_URL, key_prefix: `portico-${name}-${tag}:` },
          postgres: { url: pgUrl, schema },
          redis_failure_mode: 'fail_closed',
        },
      }),
    );
  });
  after(async () => {
    await state.gw?.close();
    if (!state.skip) await dropTestState(pgUrl, [schema]);
  });
  return state;
}
