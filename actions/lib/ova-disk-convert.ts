/**
 * One concern: turning the VMDK inside an OVA back into a writable qcow2 with `qemu-img convert -O qcow2`,
 * reading the disk in place (a raw layer at the entry's offset), so no VMDK copy is ever written.
 * qemu-img runs in its own process group and is killed with it when the signal aborts.
 */
import { runQemuImg } from './qemu-img-run.js';
import { printable } from './escape.js';
import { StandardSourceError } from './standard-source-error.js';

export interface ConvertOvaDiskOptions {
  /** The qemu-img executable. */
  qemuImg: string;
  /** The OVA file holding the disk. */
  ova: string;
  /** Byte offset of the VMDK entry's data in the OVA. */
  offset: number;
  /** Byte size of the VMDK entry. */
  size: number;
  /** The qcow2 to write. */
  target: string;
  /** Progress lines. */
  log: (line: string) => void;
  /** Time between progress lines, in ms. */
  intervalMs: number;
  /** Kills qemu-img; the promise then rejects. */
  signal?: AbortSignal;
}

/** `qemu-img convert` of the VMDK inside the OVA (raw layer at its offset) to a qcow2; own process group. */
export async function convertOvaDisk(o: ConvertOvaDiskOptions): Promise<void> {
  const opt = (v: string) => v.replace(/,/g, ',,');
  const source = `driver=vmdk,file.driver=raw,file.offset=${o.offset},file.size=${o.size},file.file.driver=file,file.file.filename=${opt(o.ova)}`;
  const args = ['convert', '-p', '--image-opts', source, '-O', 'qcow2', o.target];
  const started = performance.now();
  let lastLine = started;
  const run = await runQemuImg({
    qemuImg: o.qemuImg,
    args,
    signal: o.signal,
    // one line every intervalMs at most
    onPercent: (percent) => {
      const now = performance.now();
      if (now - lastLine < o.intervalMs) return;
      lastLine = now;
      o.log(`convert to qcow2: ${percent.toFixed(1)}% (${((now - started) / 1000).toFixed(0)} s)`);
    },
  }).catch((e: unknown) => {
    throw new StandardSourceError((e as Error).message);
  });
  if (run.aborted) throw new StandardSourceError('the conversion of the standard disk was cancelled');
  if (run.code !== 0) throw new StandardSourceError(`qemu-img could not convert the standard OVA's disk to qcow2 (${run.signal ?? `exit code ${run.code}`}): ${printable(run.stderr.trim().split('\n').pop() ?? '')}`);
}
