/**
 * Validates rendered manifests against the Kubernetes OpenAPI schemas compiled into the
 * `kubernetes-models` packages (types, required fields, enums, formats). Limitation: those schemas,
 * like Kubernetes' own OpenAPI, do not forbid unknown fields, so a misspelt optional key passes here;
 * the tests add targeted assertions for the fields that matter.
 */
import { parseAllDocuments } from 'yaml';

export interface Manifest {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string> };
  [k: string]: unknown;
}

interface Model {
  validate(): void;
}
type ModelClass = new (data: unknown) => Model;

export function parseManifests(text: string): Manifest[] {
  const out: Manifest[] = [];
  for (const doc of parseAllDocuments(text)) {
    if (doc.errors.length > 0) throw new Error(`YAML error: ${doc.errors[0]?.message}`);
    const v: unknown = doc.toJS();
    if (v === null || v === undefined) continue;
    if (typeof v !== 'object' || Array.isArray(v)) throw new Error('a manifest is not an object');
    const m = v as Manifest;
    if (
      typeof m.apiVersion !== 'string' ||
      typeof m.kind !== 'string' ||
      typeof m.metadata?.name !== 'string'
    ) {
      throw new Error(`manifest without apiVersion/kind/metadata.name: ${JSON.stringify(v).slice(0, 200)}`);
    }
    out.push(m);
  }
  return out;
}

function modulePath(apiVersion: string, kind: string): string {
  if (apiVersion.startsWith('monitoring.coreos.com/'))
    return `@kubernetes-models/prometheus-operator/${apiVersion}/${kind}`;
  return `kubernetes-models/${apiVersion}/${kind}`;
}

/** Returns one message per invalid manifest (empty when all are valid). */
export async function validateManifests(manifests: Manifest[]): Promise<string[]> {
  const problems: string[] = [];
  for (const m of manifests) {
    const where = `${m.kind}/${m.metadata.namespace ? `${m.metadata.namespace}/` : ''}${m.metadata.name}`;
    let Cls: ModelClass;
    try {
      const mod = (await import(modulePath(m.apiVersion, m.kind))) as Record<string, unknown>;
      Cls = (mod[m.kind] ?? mod['default']) as ModelClass;
      if (typeof Cls !== 'function') throw new Error('no model class');
    } catch (e) {
      problems.push(
        `${where}: no schema for ${m.apiVersion} ${m.kind} (${(e as Error).message.split('\n')[0]})`,
      );
      continue;
    }
    try {
      new Cls(m).validate();
    } catch (e) {
      problems.push(`${where}: ${(e as Error).message}`);
    }
  }
  return problems;
}
