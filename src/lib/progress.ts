/** Download progress for people: bytes, rate and ETA; redrawn in place on a terminal. */

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(v < 10 ? 1 : 0)} ${units[i] as string}`;
}

export function formatDuration(s: number): string {
  if (!Number.isFinite(s) || s < 0) return '?';
  const m = Math.floor(s / 60);
  const sec = Math.round(s % 60);
  return m > 0 ? `${m}m${String(sec).padStart(2, '0')}s` : `${sec}s`;
}

/** One progress line: "model: 37% 120.0 MiB of 324 MiB, 12.1 MiB/s, ETA 17s". */
export function progressLine(label: string, done: number, total: number, elapsedS: number): string {
  const rate = elapsedS > 0 ? done / elapsedS : 0;
  const pct = total > 0 ? Math.floor((done / total) * 100) : 0;
  const eta = rate > 0 && total > 0 ? (total - done) / rate : Number.NaN;
  const bar = total > 0 ? `[${'#'.repeat(Math.floor(pct / 5)).padEnd(20, '.')}] ` : '';
  return `${label}: ${bar}${pct}% ${formatBytes(done)} of ${total > 0 ? formatBytes(total) : '?'}, ${formatBytes(Math.round(rate))}/s, ETA ${formatDuration(eta)}`;
}

/**
 * A progress reporter. On a terminal the line is redrawn (at most 10 times a second); otherwise a
 * line is printed every 10 %.
 */
export function downloadProgress(
  label: string,
  write: (s: string) => void,
  isTTY: boolean,
  now: () => number = () => performance.now(),
): { update: (done: number, total: number) => void; finish: () => void } {
  const started = now();
  let lastDraw = Number.NEGATIVE_INFINITY;
  let lastDecile = -1;
  let drawn = false;
  return {
    update(done, total) {
      const t = now();
      const line = progressLine(label, done, total, (t - started) / 1000);
      if (isTTY) {
        if (t - lastDraw < 100 && done < total) return;
        lastDraw = t;
        drawn = true;
        write(`\r${line}\u001b[K`);
      } else {
        const decile = total > 0 ? Math.floor((done / total) * 10) : 0;
        if (decile === lastDecile) return;
        lastDecile = decile;
        write(`${line}\n`);
      }
    },
    finish() {
      if (isTTY && drawn) write('\n');
    },
  };
}
