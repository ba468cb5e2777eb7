/** The admin API's guard: `Authorization: Bearer <admin token>`, compared by sha256 in constant time. */
import type { FastifyRequest } from 'fastify';
import type { Gateway } from '../app.js';
import { PorticoError } from '../errors/portico-error.js';
import { digestsEqual, sha256Hex } from '../lib/hash.js';
import { extractKey } from '../pipeline/authenticate.js';

/** True when the request carries the admin token (no error when not: for endpoints that only show more to admins). */
export function isAdmin(gw: Gateway, request: FastifyRequest): boolean {
  const token = extractKey(request.headers.authorization);
  return token !== undefined && digestsEqual(sha256Hex(token), gw.adminTokenHash);
}

export function requireAdmin(gw: Gateway, request: FastifyRequest): void {
  if (!isAdmin(gw, request)) {
    throw new PorticoError(
      'admin_unauthorized',
      'The admin API needs "Authorization: Bearer <admin token>" (PORTICO_ADMIN_TOKEN, or the token printed at start-up).',
    );
  }
}
