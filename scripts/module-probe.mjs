// Test/bench-only probe: `node --import ./scripts/module-probe.mjs dist/main.js start ...`.
// Records every ES module the process loads (through a module.register load hook, on the loader
// thread) and, on SIGUSR2, writes them plus the CommonJS files in require.cache to the JSON file
// named by PORTICO_MODULE_REPORT. Used by bench/memory-bench.ts and test/integration/lazy-modules.
// It adds a loader thread, so RSS is never measured with it.
import { register, createRequire } from 'node:module';
import { MessageChannel } from 'node:worker_threads';
import { writeFileSync } from 'node:fs';
import { setTimeout } from 'node:timers';

const out = process.env.PORTICO_MODULE_REPORT;
const esm = new Set();
const { port1, port2 } = new MessageChannel();
port1.on('message', (url) => esm.add(url));
port1.unref();

const hooks = `
let port;
export function initialize(data) { port = data.port; }
export async function load(url, context, next) {
  port.postMessage(url);
  return next(url, context);
}`;
register('data:text/javascript,' + encodeURIComponent(hooks), {
  data: { port: port2 },
  transferList: [port2],
});

const require = createRequire(import.meta.url);
process.on('SIGUSR2', () => {
  // Let messages still in flight from the loader thread arrive first.
  setTimeout(() => {
    const cjs = Object.keys(require.cache);
    const report = { pid: process.pid, esm: [...esm].sort(), cjs: cjs.sort() };
    if (out) writeFileSync(out, JSON.stringify(report));
  }, 200);
});
