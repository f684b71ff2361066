// Host-level checks: the benchmark shares 2 cores with whatever else runs, so
// measure how busy the machine is before a scenario and say so in the report.
import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { descendants } from './rss.ts';

function cpuTimes(): { busy: number; total: number } {
  const line = readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '';
  const v = line.trim().split(/\s+/).slice(1).map(Number);
  const idle = (v[3] ?? 0) + (v[4] ?? 0); // idle + iowait
  const total = v.reduce((a, b) => a + b, 0);
  return { busy: total - idle, total };
}

/** Fraction (0..1) of all CPUs busy over `ms`, measured from /proc/stat. */
export async function hostCpuBusy(ms = 1000): Promise<number> {
  const a = cpuTimes();
  await sleep(ms);
  const b = cpuTimes();
  const total = b.total - a.total;
  return total > 0 ? (b.busy - a.busy) / total : 0;
}

/** utime+stime+cutime+cstime of one process, in clock ticks (same unit as /proc/stat). */
function procTicks(pid: number): number {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return 0;
  }
  // Fields after "(comm)": state is field 3; utime..cstime are fields 14..17.
  const rest = text.slice(text.lastIndexOf(')') + 2).split(' ');
  return [11, 12, 13, 14].reduce((a, i) => a + Number(rest[i] ?? 0), 0);
}

/** CPU ticks used by this process and every live descendant (reaped ones are in their parents' c*time). */
function ourTicks(): number {
  return [process.pid, ...descendants(process.pid)].reduce((a, p) => a + procTicks(p), 0);
}

/**
 * Measures how much CPU *other* processes (not the harness, its servers, load
 * generators or clients) used between start() and stop(), as a fraction of
 * all CPUs. On a 2-core box shared with other work this is the noise floor.
 */
export class ForeignCpuMeter {
  private a = cpuTimes();
  private ours = ourTicks();

  start(): this {
    this.a = cpuTimes();
    this.ours = ourTicks();
    return this;
  }

  stop(): number {
    const b = cpuTimes();
    const ours = ourTicks() - this.ours;
    const total = b.total - this.a.total;
    if (total <= 0) return 0;
    return Math.max(0, (b.busy - this.a.busy - ours) / total);
  }
}
