/**
 * node-llama-cpp's JSON-schema grammar degrades silently on what it does not understand (an unknown
 * `type` becomes `null`, a dangling `$ref` becomes "any JSON"), which would let the engine answer
 * with JSON that does not follow the schema. The structure is checked first: an unknown type or a
 * reference that points nowhere is the client's 400, naming the path. Value constraints the grammar
 * cannot express (pattern, minimum/maximum, most formats) are documented as not enforced.
 */
const TYPES = new Set(['string', 'number', 'integer', 'boolean', 'null', 'object', 'array']);

/** The first structural problem of a schema, as `{path, problem}`, or undefined when it is usable. */
export function schemaProblem(schema: unknown): { path: string; problem: string } | undefined {
  const root = schema;
  const resolves = (ref: string): boolean => {
    if (!ref.startsWith('#')) return false;
    let cur: unknown = root;
    for (const seg of ref.slice(1).split('/').filter(Boolean)) {
      if (typeof cur !== 'object' || cur === null) return false;
      cur = (cur as Record<string, unknown>)[decodeURIComponent(seg.replace(/~1/g, '/').replace(/~0/g, '~'))];
    }
    return typeof cur === 'object' && cur !== null;
  };
  const walk = (s: unknown, path: string, depth: number): { path: string; problem: string } | undefined => {
    if (depth > 32) return { path, problem: 'nests too deeply' };
    if (typeof s === 'boolean') return undefined;
    if (typeof s !== 'object' || s === null || Array.isArray(s))
      return { path, problem: 'is not a schema object' };
    const o = s as Record<string, unknown>;
    const types = Array.isArray(o.type) ? o.type : o.type === undefined ? [] : [o.type];
    for (const t of types)
      if (typeof t !== 'string' || !TYPES.has(t))
        return { path: `${path}.type`, problem: `has unknown type ${JSON.stringify(t)}` };
    if (o.$ref !== undefined && (typeof o.$ref !== 'string' || !resolves(o.$ref)))
      return { path: `${path}.$ref`, problem: `${JSON.stringify(o.$ref)} points to no definition` };
    for (const key of ['properties', '$defs', 'definitions'] as const) {
      const m = o[key];
      if (m === undefined) continue;
      if (typeof m !== 'object' || m === null || Array.isArray(m))
        return { path: `${path}.${key}`, problem: 'must be an object' };
      for (const [k, v] of Object.entries(m)) {
        const p = walk(v, `${path}.${key}.${k}`, depth + 1);
        if (p) return p;
      }
    }
    for (const key of ['anyOf', 'oneOf', 'prefixItems'] as const) {
      const list = o[key];
      if (list === undefined) continue;
      if (!Array.isArray(list)) return { path: `${path}.${key}`, problem: 'must be an array of schemas' };
      for (const [i, v] of list.entries()) {
        const p = walk(v, `${path}.${key}[${i}]`, depth + 1);
        if (p) return p;
      }
    }
    for (const key of ['items', 'additionalProperties'] as const) {
      if (o[key] === undefined || typeof o[key] === 'boolean') continue;
      const p = walk(o[key], `${path}.${key}`, depth + 1);
      if (p) return p;
    }
    return undefined;
  };
  return walk(schema, 'schema', 0);
}
