// Text table + JSON summary.
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Row, ScenarioResult } from './framework.ts';

export function formatNumber(v: number | null): string {
  if (v === null || !Number.isFinite(v)) return '-';
  const a = Math.abs(v);
  if (a >= 1000) return Math.round(v).toLocaleString('en-US');
  if (a >= 100) return v.toFixed(1);
  if (Number.isInteger(v)) return String(v);
  return v.toFixed(2);
}

export function formatRatio(r: number | null): string {
  if (r === null || !Number.isFinite(r)) return '-';
  return `${r >= 100 ? r.toFixed(0) : r >= 10 ? r.toFixed(1) : r.toFixed(2)}x`;
}

function table(header: string[], rows: string[][], rightAlign: Set<number>): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const fmt = (cells: string[]): string =>
    cells
      .map((c, i) => (rightAlign.has(i) ? c.padStart(widths[i] ?? 0) : c.padEnd(widths[i] ?? 0)))
      .join('  ')
      .trimEnd();
  return [fmt(header), fmt(widths.map((w) => '-'.repeat(w))), ...rows.map(fmt)].join('\n');
}

export function formatScenario(res: ScenarioResult): string {
  const base = res.subjects.baseline;
  const cand = res.subjects.candidate;
  const out: string[] = [];
  out.push(`== ${res.name} — ${res.description} [${res.status.toUpperCase()}, ${(res.durationMs / 1000).toFixed(1)} s]`);
  if (base !== undefined || cand !== undefined) {
    out.push(
      `   baseline: ${base ? `${base.label} (${base.version})` : '-'}; candidate: ${cand ? `${cand.label} (${cand.version})` : '-'}`,
    );
  }
  if (res.rows.length > 0) {
    const header = ['case', 'metric', 'unit', base?.label ?? 'baseline', cand?.label ?? 'candidate', 'ratio', 'target', 'result'];
    const rows = res.rows.map((r: Row) => [
      r.case,
      r.metric,
      r.unit,
      formatNumber(r.baseline),
      formatNumber(r.candidate),
      formatRatio(r.ratio),
      r.targetLabel,
      r.status === 'INFO' ? '' : r.status,
    ]);
    out.push(table(header, rows, new Set([3, 4, 5])));
  }
  const seen = new Set<string>();
  for (const r of res.rows) {
    for (const why of r.invalid) {
      const line = `   ! INVALID ${r.case}: ${why}`;
      if (!seen.has(line)) out.push(line);
      seen.add(line);
    }
  }
  for (const n of res.notes) out.push(`   * ${n}`);
  if (res.error !== undefined) out.push(`   ! BROKEN: ${res.error}`);
  return out.join('\n');
}

export interface Summary {
  startedAt: string;
  finishedAt: string;
  exitCode: number;
  host: Record<string, unknown>;
  options: Record<string, unknown>;
  scenarios: ScenarioResult[];
}

export async function writeSummary(dir: string, summary: Summary): Promise<string> {
  await mkdir(dir, { recursive: true });
  const stamp = summary.startedAt.replace(/[:.]/g, '-');
  const path = join(dir, `results-${stamp}.json`);
  await writeFile(path, `${JSON.stringify(summary, null, 2)}\n`);
  return path;
}
