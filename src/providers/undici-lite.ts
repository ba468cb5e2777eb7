/**
 * undici's Pool and connector without the rest of undici. `import { Pool } from 'undici'` loads
 * its whole index: fetch, WebSocket, cache stores, mocks, proxy agents (~110 files, ~3.5 MB of
 * heap and ~6 MB of RSS at start-up) of which the gateway uses none. This loads the three files
 * the gateway's HTTP providers need and does what undici's index does for them (it puts the
 * request/stream/pipeline API on Dispatcher.prototype). Should a future undici move these files,
 * it falls back to the full package, so this can cost memory but never break a request.
 */
import { createRequire } from 'node:module';
import type * as Undici from 'undici';

interface Lite {
  Pool: typeof Undici.Pool;
  buildConnector: typeof Undici.buildConnector;
}

function load(): Lite {
  const require = createRequire(import.meta.url);
  try {
    const Dispatcher = require('undici/lib/dispatcher/dispatcher.js') as { prototype: object };
    const api = require('undici/lib/api/index.js') as object;
    const Pool = require('undici/lib/dispatcher/pool.js') as typeof Undici.Pool;
    const buildConnector = require('undici/lib/core/connect.js') as typeof Undici.buildConnector;
    if (typeof Pool !== 'function' || typeof buildConnector !== 'function' || !('request' in api))
      throw new Error('unexpected undici layout');
    // What undici's index.js does: the request API on every dispatcher (idempotent).
    Object.assign(Dispatcher.prototype, api);
    return { Pool, buildConnector };
  } catch {
    const full = require('undici') as typeof Undici;
    return { Pool: full.Pool, buildConnector: full.buildConnector };
  }
}

const lite = load();
export const Pool = lite.Pool;
export const buildConnector = lite.buildConnector;
export type Pool = Undici.Pool;
// eslint-disable-next-line @typescript-eslint/no-namespace
export declare namespace buildConnector {
  export type BuildOptions = Undici.buildConnector.BuildOptions;
  export type connector = Undici.buildConnector.connector;
  export type Callback = Undici.buildConnector.Callback;
}
