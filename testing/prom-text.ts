/** Parses Prometheus text exposition into "name{a="x",b="y"}" (labels sorted) -> value, for exact assertions. */
export function parseMetrics(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)/.exec(line);
    if (!match) throw new Error(`unparseable metrics line: ${line}`);
    const labels = [...(match[3] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)].map(
      ([, k, v]) => [k!, v!] as const
    );
    out.set(seriesKey(match[1]!, Object.fromEntries(labels)), Number(match[4]));
  }
  return out;
}

export function seriesKey(name: string, labels: Record<string, string> = {}): string {
  const parts = Object.keys(labels)
    .sort()
    .map((k) => `${k}="${labels[k]}"`);
  return parts.length ? `${name}{${parts.join(',')}}` : name;
}

/** Every series of one metric name, as [labels, value] pairs. */
export function seriesOf(metrics: Map<string, number>, name: string): Array<[string, number]> {
  return [...metrics].filter(([key]) => key === name || key.startsWith(`${name}{`));
}
