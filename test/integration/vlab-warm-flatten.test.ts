/**
 * vlab-warm's flatten step on its own, with the real qemu-img (through qemu-img-run.ts: its own process
 * group): the overlay becomes a standalone qcow2 with the overlay's data and no backing file, written under a
 * `.partial` name and renamed; a failing convert names the command and qemu-img's message; a cancelled one
 * says so and leaves no partial file behind after the cleanup.
 */
import { describe, it, expect, beforeAll, afterAll } from '@jest/globals';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { flattenStep } from '../../actions/lib/vlab-warm-vm.js';
import type { WarmState } from '../../actions/lib/vlab-warm-state.js';
import type { WarmOptions } from '../../actions/lib/vlab-warm-inputs.js';

let work: string;
let base: string;
const qemuImg = (...args: string[]) => execFileSync('qemu-img', args, { encoding: 'utf8' });

beforeAll(() => {
  work = mkdtempSync(join(tmpdir(), 'labforge-warm-flatten-'));
  base = join(work, 'standard.qcow2');
  qemuImg('create', '-q', '-f', 'qcow2', base, '64M');
});
afterAll(() => rmSync(work, { recursive: true, force: true }));

function state(output: string, overlay: string, lines: string[]): WarmState {
  return { opts: { output } as WarmOptions, overlay, log: (l) => lines.push(l), onResources: () => undefined, onSecret: () => undefined, timings: {} };
}

describe('flatten', () => {
  it('writes the overlay as a standalone qcow2 with its data, through a .partial name', async () => {
    const overlay = join(work, 'a.overlay.qcow2');
    qemuImg('create', '-q', '-f', 'qcow2', '-b', base, '-F', 'qcow2', overlay);
    // Data written into the overlay (the warm's changes) must survive the flatten.
    execFileSync('qemu-io', ['-c', 'write -P 0x5a 1M 64k', overlay], { stdio: 'pipe' });
    const output = join(work, 'a.qcow2');
    const lines: string[] = [];
    const s = state(output, overlay, lines);
    await flattenStep.run(s, new AbortController().signal);
    const info = JSON.parse(qemuImg('info', '--output=json', output)) as { format: string; 'backing-filename'?: string };
    expect(info.format).toBe('qcow2');
    expect(info['backing-filename']).toBeUndefined();
    expect(execFileSync('qemu-io', ['-c', 'read -P 0x5a 1M 64k', output], { encoding: 'utf8' })).toMatch(/read 65536\/65536 bytes/);
    expect(existsSync(`${output}.partial`)).toBe(false);
    expect(lines).toContain('flatten: 100.0% (0 s)');
    expect(lines.at(-1)).toMatch(new RegExp(`^pre-warmed image ${output} \\(\\d+ MiB\\)$`));
  });

  it('names the command and qemu-img’s message when the convert fails, and the cleanup removes the partial file', async () => {
    const output = join(work, 'b.qcow2');
    const s = state(output, join(work, 'no-such.overlay.qcow2'), []);
    const err = await flattenStep.run(s, new AbortController().signal).catch((e: Error) => e);
    expect((err as Error).message).toMatch(/^qemu-img convert -p -O qcow2 \S+no-such\.overlay\.qcow2 \S+b\.qcow2\.partial failed \(exit 1\): .*No such file/);
    await flattenStep.cleanup!(s, 'failed');
    expect(existsSync(`${output}.partial`)).toBe(false);
    expect(existsSync(output)).toBe(false);
  });

  it('says it was cancelled when the warm is', async () => {
    const overlay = join(work, 'c.overlay.qcow2');
    qemuImg('create', '-q', '-f', 'qcow2', '-b', base, '-F', 'qcow2', overlay);
    const output = join(work, 'c.qcow2');
    const s = state(output, overlay, []);
    const controller = new AbortController();
    controller.abort(new Error('cancelled by SIGTERM'));
    const err = await flattenStep.run(s, controller.signal).catch((e: Error) => e);
    expect((err as Error).message).toBe('qemu-img was cancelled');
    await flattenStep.cleanup!(s, 'cancelled');
    expect(existsSync(`${output}.partial`)).toBe(false);
    expect(existsSync(output)).toBe(false);
  });
});
