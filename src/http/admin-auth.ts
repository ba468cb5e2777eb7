/** The admin API's guard: `Authorization: Bearer <admin token>`, compared by sha256 in constant time. */
import type { FastifyRequest } from 'fastify';
import type { Gateway } from '../app.js';
import { PorticoError } from '../errors/portico-error.js';
import { digestsEqual, sha256Hex } from '../lib/hash.js';
import { extractKey } from '../pipeline/authenticate.js';

export function requireAdmin(gw: Gateway, request: FastifyRequest): void {
  const token = extractKey(request.headers.authorization);
  if (token === undefined || !digestsEqual(sha256Hex(token), gw.adminTokenHash)) {
    throw new PorticoError(
      'admin_unauthorized',
      'The admin API needs "Authorization: Bearer <admin token>" (PORTICO_ADMIN_TOKEN, or the token printed at start-up).',
    );
  }
}
