/**
 * One concern: turning the VMDK inside an OVA back into a writable qcow2 with `qemu-img convert -O qcow2`,
 * reading the disk in place (a raw layer at the entry's offset), so no VMDK copy is ever written.
 * qemu-img runs in its own process group and is killed with it when the signal aborts.
 */
import { spawn } from 'node:child_process';
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
  await new Promise<void>((done, reject) => {
    const child = spawn(o.qemuImg, args, { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    let err = '';
    // `-p` prints "(12.34/100%)" updates; one line every intervalMs at most.
    child.stdout.on('data', (d: Buffer) => {
      const m = /\((\d+(?:\.\d+)?)\/100%\)[^(]*$/.exec(d.toString());
      const now = performance.now();
      if (m && now - lastLine >= o.intervalMs) {
        lastLine = now;
        o.log(`convert to qcow2: ${Number(m[1]).toFixed(1)}% (${((now - started) / 1000).toFixed(0)} s)`);
      }
    });
    const kill = () => {
      if (child.pid !== undefined && child.exitCode === null) {
        try {
          process.kill(-child.pid, 'SIGKILL');
        } catch {
          /* already gone */
        }
      }
    };
    o.signal?.addEventListener('abort', kill, { once: true });
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('error', (e) => reject(new StandardSourceError(`cannot run ${o.qemuImg} (${e.message}); install qemu-utils`)));
    child.on('close', (code, sig) => {
      o.signal?.removeEventListener('abort', kill);
      if (o.signal?.aborted) reject(new StandardSourceError('the conversion of the standard disk was cancelled'));
      else if (code === 0) done();
      else reject(new StandardSourceError(`qemu-img could not convert the standard OVA's disk to qcow2 (${sig ?? `exit code ${code}`}): ${printable(err.trim().split('\n').pop() ?? '')}`));
    });
  });
}
