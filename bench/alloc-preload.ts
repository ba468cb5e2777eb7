/**
 * Preloaded into a gateway by bench/alloc-bench.ts (`node --import`, transpiled to bench/out/):
 * V8's sampling heap profiler, objects the scavenger and mark-compact collected included, started
 * by the first SIGUSR2 and stopped by the second, which writes the profile to ALLOC_PROFILE_OUT.
 * In-process inspector session: nothing listens on a port.
 */
import { Session } from 'node:inspector';
import { writeFileSync } from 'node:fs';

const out = process.env.ALLOC_PROFILE_OUT;
const interval = Number(process.env.ALLOC_SAMPLING_INTERVAL ?? 256);
if (out) {
  const session = new Session();
  session.connect();
  session.post('HeapProfiler.enable');
  let sampling = false;
  process.on('SIGUSR2', () => {
    if (!sampling) {
      sampling = true;
      session.post('HeapProfiler.startSampling', {
        samplingInterval: interval,
        includeObjectsCollectedByMajorGC: true,
        includeObjectsCollectedByMinorGC: true,
      });
      return;
    }
    sampling = false;
    session.post('HeapProfiler.stopSampling', (err, res) => {
      writeFileSync(out, err ? JSON.stringify({ error: String(err) }) : JSON.stringify(res.profile));
    });
  });
}
