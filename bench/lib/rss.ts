// Memory sampling from /proc/<pid>/status (VmRSS = resident now, VmHWM = peak
// resident since start). "Tree" figures add every descendant process, which
// matters if a server forks helpers (e.g. tsx may run an esbuild service).
import { readFileSync, readdirSync } from 'node:fs';

export interface ProcMemory {
  /** Resident set size now, bytes. */
  rss: number;
  /** Peak resident set size ("high water mark"), bytes. */
  hwm: number;
}

export function readProcMemory(pid: number): ProcMemory | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/status`, 'utf8');
  } catch {
    return undefined;
  }
  const kb = (field: string): number => {
    const m = new RegExp(`^${field}:\\s+(\\d+)\\s+kB`, 'm').exec(text);
    return m?.[1] !== undefined ? Number(m[1]) * 1024 : 0;
  };
  return { rss: kb('VmRSS'), hwm: kb('VmHWM') };
}

export function descendants(pid: number): number[] {
  const out: number[] = [];
  const stack = [pid];
  while (stack.length > 0) {
    const p = stack.pop()!;
    let tids: string[] = [];
    try {
      tids = readdirSync(`/proc/${p}/task`);
    } catch {
      continue;
    }
    for (const tid of tids) {
      let kids = '';
      try {
        kids = readFileSync(`/proc/${p}/task/${tid}/children`, 'utf8');
      } catch {
        continue;
      }
      for (const k of kids.split(/\s+/)) {
        if (k === '') continue;
        const kp = Number(k);
        out.push(kp);
        stack.push(kp);
      }
    }
  }
  return out;
}

export interface MemorySnapshot {
  /** The server process itself. */
  main: ProcMemory;
  /** Server process + all descendants (sums; HWM sum is an upper bound). */
  tree: ProcMemory;
  pids: number[];
}

export function snapshotMemory(pid: number): MemorySnapshot | undefined {
  const main = readProcMemory(pid);
  if (main === undefined) return undefined;
  const tree = { ...main };
  const kids = descendants(pid);
  for (const k of kids) {
    const m = readProcMemory(k);
    if (m === undefined) continue;
    tree.rss += m.rss;
    tree.hwm += m.hwm;
  }
  return { main, tree, pids: [pid, ...kids] };
}

export interface RssSamples {
  samples: number;
  /** Max VmRSS of the main process seen while sampling, bytes. */
  maxRss: number;
  /** Max summed VmRSS of the process tree, bytes. */
  maxTreeRss: number;
  /** VmHWM of the main process at stop(), bytes. */
  hwmAtEnd: number;
}

/** Samples VmRSS every `intervalMs` until stop(). */
export class RssSampler {
  private timer: NodeJS.Timeout | undefined;
  private result: RssSamples = { samples: 0, maxRss: 0, maxTreeRss: 0, hwmAtEnd: 0 };

  constructor(
    private readonly pid: number,
    private readonly intervalMs = 20,
  ) {}

  start(): this {
    this.sample();
    this.timer = setInterval(() => this.sample(), this.intervalMs);
    return this;
  }

  private sample(): void {
    const s = snapshotMemory(this.pid);
    if (s === undefined) return;
    this.result.samples++;
    this.result.maxRss = Math.max(this.result.maxRss, s.main.rss);
    this.result.maxTreeRss = Math.max(this.result.maxTreeRss, s.tree.rss);
    this.result.hwmAtEnd = s.main.hwm;
  }

  stop(): RssSamples {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
    this.sample();
    return { ...this.result };
  }
}
