/**
 * The free-port race between runners on one host (issue 15, security review): QEMU's hostfwd binds the SSH
 * port itself, so a port that was free when it was picked can be taken before QEMU starts. Provoked here
 * for real: two QEMUs are handed the same port at the same time, and another process holds a port before
 * QEMU gets it. Every VM must still start, each on a port of its own.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { findFreePort } from '../../actions/lib/free-port.js';
import { isPortTaken, startVm, type RunningVm, type StartVmOptions } from '../../actions/lib/qemu-vm.js';

let work: string;
let disk: string;
const started: RunningVm[] = [];

beforeAll(() => {
  work = mkdtempSync(join(tmpdir(), 'labforge-port-race-'));
  disk = join(work, 'blank.raw');
  // A blank disk: QEMU starts (SeaBIOS finds nothing to boot); no guest is needed to hold the forward.
  execFileSync('qemu-img', ['create', '-q', '-f', 'raw', disk, '1M']);
});
afterAll(async () => {
  for (const vm of started) await vm.kill().catch(() => undefined);
  rmSync(work, { recursive: true, force: true });
});

const vmOptions = (name: string, pickPort: StartVmOptions['pickPort']): StartVmOptions => ({
  image: disk,
  imageFormat: 'raw',
  accelerator: 'tcg',
  memoryMiB: 64,
  cpus: 1,
  serialLog: join(work, `${name}.log`),
  snapshot: true,
  pickPort,
});

/** A port source that hands out `first` once, then asks the kernel (as a racing runner would). */
function firstThenFree(first: number): { pick: StartVmOptions['pickPort']; asked: number[][] } {
  const asked: number[][] = [];
  let handed = false;
  return {
    asked,
    pick: async (exclude) => {
      asked.push([...exclude]);
      if (!handed) {
        handed = true;
        return first;
      }
      return findFreePort({ exclude });
    },
  };
}

describe('the SSH port forward of startVm under a port race', () => {
  it('starts on another port when a process took the picked one first', async () => {
    const holder: Server = createServer();
    await new Promise<void>((res) => holder.listen(0, '127.0.0.1', res));
    const taken = (holder.address() as { port: number }).port;
    try {
      const source = firstThenFree(taken);
      const vm = await startVm(vmOptions('held', source.pick));
      started.push(vm);
      expect(vm.sshPort).not.toBe(taken);
      expect(source.asked).toEqual([[], [taken]]);
    } finally {
      holder.close();
    }
  }, 60_000);

  it('two VMs handed the same port at once both start, each on its own port', async () => {
    const same = await findFreePort();
    const a = firstThenFree(same);
    const b = firstThenFree(same);
    const [vmA, vmB] = await Promise.all([startVm(vmOptions('race-a', a.pick)), startVm(vmOptions('race-b', b.pick))]);
    started.push(vmA, vmB);
    expect(vmA.sshPort).not.toBe(vmB.sshPort);
    expect([vmA.sshPort, vmB.sshPort]).toContain(same);
    // Exactly one of them lost the race and asked again, excluding the port it lost.
    expect([a.asked.length, b.asked.length].sort()).toEqual([1, 2]);
    expect([...a.asked, ...b.asked]).toContainEqual([same]);
  }, 60_000);
});

describe('findFreePort and the taken-port test', () => {
  it('never returns an excluded port', async () => {
    const first = await findFreePort();
    const exclude = new Set([first]);
    for (let i = 0; i < 5; i++) expect(await findFreePort({ exclude })).not.toBe(first);
  });

  it("knows QEMU's words for a taken forward, and not an option echoed in another error", () => {
    expect(isPortTaken("qemu-system-x86_64: -netdev user,id=net0,hostfwd=tcp:127.0.0.1:2222-:22: Could not set up host forwarding rule 'tcp:127.0.0.1:2222-:22'")).toBe(true);
    expect(isPortTaken('qemu-system-x86_64: -netdev user,id=net0,hostfwd=tcp:127.0.0.1:2222-:22: Invalid parameter \'bogus\'')).toBe(false);
  });
});
