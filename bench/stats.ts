/** Percentile by nearest rank over a copy of the samples (milliseconds in, milliseconds out). */
export function percentile(samples: readonly number[], p: number): number {
  if (samples.length === 0) return Number.NaN;
  const sorted = [...samples].sort((a, b) => a - b);
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank]!;
}

export const fmtMs = (ms: number) => (ms >= 100 ? ms.toFixed(0) : ms.toFixed(2)) + ' ms';

export async function timed<T>(work: () => Promise<T>): Promise<{ ms: number; result: T }> {
  const started = process.hrtime.bigint();
  const result = await work();
  return { ms: Number(process.hrtime.bigint() - started) / 1e6, result };
}

/** Sequential requests against a URL; returns each request's latency in ms. */
export async function scrapeLatencies(url: string, count: number): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < count; i++) {
    const { ms } = await timed(async () => {
      const res = await fetch(url);
      if (res.status !== 200) throw new Error(`${url} answered ${res.status}`);
      await res.text();
    });
    out.push(ms);
  }
  return out;
}
