/**
 * Disk images with real data for the packing tests: a qcow2 made by qemu-img from a raw file that holds
 * random bytes (incompressible), then log text (compressible), then holes up to the virtual size.
 */
import { execFileSync } from 'node:child_process';
import { closeSync, openSync, rmSync, writeSync } from 'node:fs';

export interface DataImageOptions {
  /** Virtual size in bytes. */
  virtualBytes: number;
  /** MiB of random bytes at the start (from /dev/urandom). */
  randomMiB: number;
  /** Lines of log text written over the start of the random bytes (about 37 bytes each). */
  textLines: number;
}

/** Writes the qcow2 at `path` (its raw source is removed). */
export function makeDataImage(path: string, o: DataImageOptions): void {
  const raw = `${path}.raw`;
  execFileSync('qemu-img', ['create', '-q', '-f', 'raw', raw, String(o.virtualBytes)]);
  execFileSync('dd', ['if=/dev/urandom', `of=${raw}`, 'bs=1M', `count=${o.randomMiB}`, 'conv=notrunc', 'status=none']);
  const text = Buffer.from(Array.from({ length: o.textLines }, (_, i) => `log line ${i}: the lab is warming up\n`).join(''));
  const fd = openSync(raw, 'r+');
  try {
    writeSync(fd, text, 0, text.length, 0);
  } finally {
    closeSync(fd);
  }
  try {
    execFileSync('qemu-img', ['convert', '-f', 'raw', '-O', 'qcow2', raw, path]);
  } finally {
    rmSync(raw, { force: true });
  }
}
