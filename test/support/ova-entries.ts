/** Reading an OVA in place, for tests: where an entry's data is, and qemu-img's view of the VMDK inside. */
import { closeSync, openSync, readSync } from 'node:fs';

/** The byte offset and size of an entry's data in an OVA, from its ustar headers. */
export function entryRange(ova: string, name: string): { offset: number; size: number } {
  const fd = openSync(ova, 'r');
  try {
    for (let offset = 0; ; ) {
      const h = Buffer.alloc(512);
      readSync(fd, h, 0, 512, offset);
      if (h.every((b) => b === 0)) throw new Error(`${name} is not in ${ova}`);
      const size = parseInt(h.subarray(124, 136).toString('latin1').replace(/\0.*$/, '').trim(), 8);
      if (h.subarray(0, 100).toString('latin1').replace(/\0.*$/, '') === name) return { offset: offset + 512, size };
      offset += 512 + Math.ceil(size / 512) * 512;
    }
  } finally {
    closeSync(fd);
  }
}

/** qemu-img's view of the VMDK inside an OVA, read in place (no extraction): a `json:` image name. */
export const vmdkInOva = (ova: string, r: { offset: number; size: number }): string =>
  `json:${JSON.stringify({ driver: 'vmdk', file: { driver: 'raw', offset: r.offset, size: r.size, file: { driver: 'file', filename: ova } } })}`;
