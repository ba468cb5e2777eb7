/**
 * The config's JSON Schema, generated from the zod schema the gateway validates with (so editors
 * with the YAML language server autocomplete and validate portico.yaml). Published as
 * schema/portico.schema.json (`npm run docs` regenerates it; test/docs checks it is current) and
 * printed by `portico config schema`.
 */
import { z } from 'zod';
import { ConfigSchema } from './schema.js';

export function configJsonSchema(): Record<string, unknown> {
  const schema = z.toJSONSchema(ConfigSchema, {
    // What a person writes: fields with defaults are optional.
    io: 'input',
    unrepresentable: 'any',
    target: 'draft-7',
  }) as Record<string, unknown>;
  return {
    $schema: schema.$schema,
    title: 'Portico gateway config (portico.yaml)',
    description:
      'Generated from src/config/schema.ts by `npm run docs`. Values may use ${ENV} and ${ENV:-default}; `portico config check FILE` runs the cross-field checks too.',
    ...Object.fromEntries(Object.entries(schema).filter(([k]) => k !== '$schema')),
  };
}

export function configJsonSchemaText(): string {
  return JSON.stringify(configJsonSchema(), null, 2) + '\n';
}
