/**
 * The routes the gateway serves itself (src/http/routes/*, src/http/server.ts, src/http/docs.ts),
 * which a team route's dedicated `path` may not take: registering one twice crashes the start
 * ("Method 'POST' already declared"), and a path a built-in pattern matches would shadow it (or
 * be shadowed). test/integration/teams.test.ts checks this list against the routes a gateway
 * registers, so a new built-in route that is missing here fails there.
 */
import { canonicalApiUrl } from '../lib/route-aliases.js';

export const BUILTIN_ROUTES: readonly string[] = [
  'GET /health',
  'GET /startup',
  'GET /ready',
  'GET /metrics',
  'GET /docs',
  'GET /docs/*',
  'POST /v1/chat/completions',
  'POST /v1/completions',
  'POST /v1/embeddings',
  'POST /v1/rerank',
  'POST /v1/responses',
  'GET /v1/responses/:id',
  'DELETE /v1/responses/:id',
  'GET /v1/responses/:id/input_items',
  'GET /v1/models',
  'GET /v1/models/:id',
  'POST /v1/messages',
  'POST /v1/messages/count_tokens',
  'POST /ask',
  'GET /info',
  'POST /api/:team/predict',
  'GET /admin/backends',
  'GET /admin/tenants',
  'POST /admin/tenants',
  'GET /admin/tenants/:id',
  'PATCH /admin/tenants/:id',
  'DELETE /admin/tenants/:id',
  'GET /admin/tenants/:id/keys',
  'POST /admin/tenants/:id/keys',
  'GET /admin/keys',
  'POST /admin/keys/:id/revoke',
  'GET /admin/usage',
  'GET /admin/stats',
  'GET /admin/requests',
  'GET /admin/requests/:id',
  'GET /admin/models',
  'POST /admin/playground',
  'GET /console',
  'GET /console/*',
];

/** Each route's pattern as a regex over a path: `:param` is one segment, `*` the rest. */
const MATCHERS: ReadonlyArray<{ route: string; re: RegExp }> = BUILTIN_ROUTES.map((route) => {
  const pattern = route.slice(route.indexOf(' ') + 1);
  const source = pattern
    .split('/')
    .map((seg) =>
      seg === '*' ? '.*' : seg.startsWith(':') ? '[^/]+' : seg.replace(/[.+?^${}()|[\]\\-]/g, '\\$&'),
    )
    .join('/');
  return { route, re: new RegExp(`^${source}$`) };
});

/**
 * Why a team route may not be served at `path`: the built-in route it is, is an alias of (the
 * OpenAI-style paths answer without /v1 and with a trailing slash: such a request is rewritten to
 * the canonical path before routing, so it would never reach the team route), or would be
 * matched by. Undefined when the path is free.
 */
export function builtinRouteAt(path: string): string | undefined {
  const canonical = canonicalApiUrl(path);
  const hit = MATCHERS.find((m) => m.re.test(canonical));
  if (canonical !== path)
    return hit ? `an alias of the built-in route ${hit.route}` : `rewritten to ${canonical}`;
  return hit && `the built-in route ${hit.route}`;
}
