/** Test support: read a gateway's /metrics as exact series, to assert what an operator would see. */
import type { TestGateway } from './gateway.js';

/**
 * Every series of `name` (a counter or gauge; for a histogram pass `<name>_count`) as
 * `{ '<labels>': value }`, the labels as rendered (`backend="a",model="m",status="200"`), so a
 * test can deepEqual the whole set: a series that should not exist shows up as a difference.
 * `only` keeps the series whose labels contain it.
 */
export async function series(
  gw: Pick<TestGateway, 'url'>,
  name: string,
  only = '',
): Promise<Record<string, number>> {
  const text = await (await fetch(`${gw.url}/metrics`)).text();
  const out: Record<string, number> = {};
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    const space = line.lastIndexOf(' ');
    const head = line.slice(0, space);
    const labels = head.length > name.length ? head.slice(name.length + 1, -1) : '';
    if (only && !labels.includes(only)) continue;
    out[labels] = Number(line.slice(space + 1));
  }
  return out;
}

/** Poll until `check` passes (the gateway finishes some requests a moment after the client sees the end). */
export async function eventually(check: () => Promise<void>, ms = 3_000): Promise<void> {
  const until = Date.now() + ms;
  for (;;) {
    try {
      await check();
      return;
    } catch (err) {
      if (Date.now() > until) throw err;
      await new Promise((r) => setTimeout(r, 25));
    }
  }
}
