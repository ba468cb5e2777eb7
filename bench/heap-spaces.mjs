// Preloaded (--import) into the processes bench/memory-bench.ts measures: on SIGUSR2, one line on
// stderr with V8's heap spaces (committed / used MB) and the external memory, so the report can say
// where resident memory under load sits (young generation, old-generation garbage awaiting a
// mark-compact, ArrayBuffers) for the floor and the gateway alike.
import { getHeapSpaceStatistics } from 'node:v8';

const mb = (n) => Math.round((n / 1048576) * 10) / 10;
process.on('SIGUSR2', () => {
  const spaces = {};
  for (const s of getHeapSpaceStatistics())
    spaces[s.space_name.replace(/_space$/, '')] = { size: mb(s.space_size), used: mb(s.space_used_size) };
  const m = process.memoryUsage();
  process.stderr.write(
    `HEAP-SPACES ${JSON.stringify({ rss: mb(m.rss), external: mb(m.external), array_buffers: mb(m.arrayBuffers), spaces })}\n`,
  );
});
