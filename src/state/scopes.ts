/**
 * Counter and quota names, in one place, so every replica (and every version of the gateway)
 * agrees on them. `who` is the subject inside the tenant: the tenant itself, one key, or one
 * client IP.
 */
import type { ScopeKey } from './ports.js';

export type Subject = { kind: 'tenant' } | { kind: 'key'; id: string } | { kind: 'ip'; ip: string };

/** "tenant" | "key:<id>" | "ip:<address>" — also the quota scope name. */
export function subjectName(s: Subject): string {
  switch (s.kind) {
    case 'tenant':
      return 'tenant';
    case 'key':
      return `key:${s.id}`;
    case 'ip':
      return `ip:${s.ip}`;
  }
}

/** Token bucket for requests/s. */
export function rpsKey(tenant: string, s: Subject): ScopeKey {
  return { tenant, name: `${subjectName(s)}:rps` };
}

/** Sliding window for tokens/min. */
export function tpmKey(tenant: string, s: Subject): ScopeKey {
  return { tenant, name: `${subjectName(s)}:tpm` };
}

/** In-flight leases. */
export function inflightKey(tenant: string, s: Subject): ScopeKey {
  return { tenant, name: `${subjectName(s)}:inflight` };
}
