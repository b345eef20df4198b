/**
 * A real importer's reading of an OVA, for tests: virt-v2v (libguestfs) with `-i ova … -o null --print-source`
 * parses the tar, checks every file against the manifest's SHA-256, reads the OVF descriptor and stops before
 * any conversion (no libguestfs appliance is started, nothing is written).
 */
import { spawnSync } from 'node:child_process';

/** virt-v2v's reading of an OVA: its exit status and the source facts it printed. */
export function importerReads(ova: string): { status: number | null; text: string; facts: Record<string, string>; disks: string[] } {
  // -o null: nothing would be written anywhere; --print-source stops after reading the source.
  const r = spawnSync('virt-v2v', ['-i', 'ova', ova, '-o', 'null', '--print-source'], { encoding: 'utf8', timeout: 120_000, env: { ...process.env, LIBGUESTFS_BACKEND: 'direct' } });
  const text = `${r.stdout}${r.stderr}`;
  const facts: Record<string, string> = {};
  for (const m of text.matchAll(/^\s*([a-zA-Z ]+): (.+)$/gm)) facts[m[1]!.trim()] = m[2]!.trim();
  const disks = /^disks:\n((?:\t.*\n)*)/m.exec(text)?.[1]?.split('\n').filter(Boolean) ?? [];
  return { status: r.status, text, facts, disks };
}
