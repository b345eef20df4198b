/**
 * Progress lines for long transfers: percent, MiB/s and ETA, at most every few seconds and always at the end.
 */

export interface ProgressOptions {
  /** What is moving ("upload hedgehog-lab-standard-1.4.0.ova"). */
  label: string;
  totalBytes: number;
  /** Where lines go (core.info in the action, stderr in the CLI). */
  log: (line: string) => void;
  /** Minimum time between lines. Default 5000 ms. */
  intervalMs?: number;
  now?: () => number;
}

/** Formats a byte count as MiB/GiB with one decimal. */
export function formatBytes(n: number): string {
  if (n >= 1024 ** 3) return `${(n / 1024 ** 3).toFixed(2)} GiB`;
  if (n >= 1024 ** 2) return `${(n / 1024 ** 2).toFixed(1)} MiB`;
  if (n >= 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${n} B`;
}

/** Formats seconds as 1h02m03s / 2m03s / 3s. */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds)) return '?';
  const s = Math.max(0, Math.round(seconds));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const r = s % 60;
  if (h > 0) return `${h}h${String(m).padStart(2, '0')}m${String(r).padStart(2, '0')}s`;
  if (m > 0) return `${m}m${String(r).padStart(2, '0')}s`;
  return `${r}s`;
}

/** Throughput of a transfer as the upload summary shows it: `12.3 MiB/s (25690112 bytes in 2.00 s)`. */
export function formatThroughput(bytes: number, seconds: number): string {
  const rate = seconds > 0 ? `${(bytes / 1024 ** 2 / seconds).toFixed(1)} MiB/s` : '– MiB/s';
  return `${rate} (${bytes} bytes in ${seconds.toFixed(2)} s)`;
}

/** Counts bytes done and prints a throttled progress line. */
export class TransferProgress {
  private done = 0;
  private lastLine = 0;
  private readonly start: number;
  private readonly now: () => number;

  constructor(private readonly opts: ProgressOptions) {
    this.now = opts.now ?? (() => performance.now());
    this.start = this.now();
    this.lastLine = this.start;
  }

  /** Adds bytes done (sent, written, or found already verified) and prints a line if one is due. */
  add(bytes: number): void {
    this.done += bytes;
    if (this.now() - this.lastLine >= (this.opts.intervalMs ?? 5000)) this.print();
  }

  get bytesDone(): number {
    return this.done;
  }

  /** Seconds since the start. */
  elapsed(): number {
    return (this.now() - this.start) / 1000;
  }

  /** Prints the closing line. */
  finish(note = ''): void {
    this.print(note);
  }

  private print(note = ''): void {
    this.lastLine = this.now();
    const secs = Math.max(this.elapsed(), 1e-6);
    const rate = this.done / secs;
    const total = this.opts.totalBytes;
    const pct = total > 0 ? (100 * this.done) / total : 100;
    const eta = rate > 0 ? (total - this.done) / rate : Infinity;
    this.opts.log(
      `${this.opts.label}: ${pct.toFixed(1)}% (${formatBytes(this.done)} of ${formatBytes(total)}), ${(rate / 1024 ** 2).toFixed(1)} MiB/s, ` +
        (this.done >= total ? `done in ${formatDuration(secs)}` : `ETA ${formatDuration(eta)}`) +
        (note ? ` ${note}` : ''),
    );
  }
}
