// Writes the Grafana dashboards defined in dashboards.ts to deploy/monitoring/grafana/dashboards/.
// Usage: npm run monitoring:dashboards
import { mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { renderAll } from './dashboards.js';

const outDir = resolve(dirname(fileURLToPath(import.meta.url)), '../../deploy/monitoring/grafana/dashboards');
mkdirSync(outDir, { recursive: true });
const files = renderAll();
for (const name of readdirSync(outDir)) {
  if (name.endsWith('.json') && !files.has(name)) rmSync(join(outDir, name));
}
for (const [name, text] of files) writeFileSync(join(outDir, name), text);
console.log(`wrote ${files.size} dashboards to ${outDir}`);
