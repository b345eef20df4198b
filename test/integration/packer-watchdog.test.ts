/**
 * The SSH watchdog against real sockets: a port where nothing listens yet (a guest still booting), then a
 * real OpenSSH sshd on 127.0.0.1 that refuses the key. The watchdog must look again while Packer waits and
 * end with the verdict that says what stops the login; once Packer has connected it must not look again.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { PackerEvent } from '../../actions/lib/packer-machine-readable.js';
import { SshWatchdog } from '../../actions/lib/packer-watchdog.js';
import { freeLocalPort, generateClientKey, startSshd, type ClientKey, type Sshd } from '../support/sshd.js';

let dir: string;
let key: ClientKey;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'labforge-watchdog-'));
  key = generateClientKey(dir);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const ui = (text: string): PackerEvent => ({ kind: 'ui', time: new Date(), target: 'qemu.lab', level: 'say', text });

function watchdog(port: number) {
  const lines: string[] = [];
  const reporter = { line: (l: string) => lines.push(l), startGroup: () => undefined, endGroup: () => undefined };
  const w = new SshWatchdog({ afterSeconds: 1, username: 'labforge-watchdog-nobody', privateKeyFile: key.path }, join(dir, 'no-build-log'), reporter);
  w.observe(ui(`Found port for communicator (SSH, WinRM, etc): ${port}`));
  w.observe(ui('Waiting for SSH to become available...'));
  return { w, lines };
}

async function until(what: () => boolean, seconds: number): Promise<void> {
  const end = Date.now() + seconds * 1000;
  while (!what()) {
    if (Date.now() > end) throw new Error(`not within ${seconds} s`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

describe('the SSH watchdog of a Packer build', () => {
  it('looks again while nothing answers SSH, and ends with the verdict of the sshd that comes up', async () => {
    const port = await freeLocalPort();
    const { w, lines } = watchdog(port);
    let sshd: Sshd | undefined;
    try {
      await until(() => lines.some((l) => /looking again in 15 s/.test(l)), 20);
      expect(lines[0]).toBe(`SSH watchdog: Packer has waited 1 s for SSH; diagnosing 127.0.0.1:${port} as labforge-watchdog-nobody`);
      expect(w.verdict?.cause).toBe('connection-refused');
      sshd = await startSshd({ port });
      await until(() => w.verdict?.cause === 'auth-rejected', 40);
      await w.settle();
      expect(lines).toContain(`SSH watchdog: Packer has waited 16 s for SSH; diagnosing 127.0.0.1:${port} as labforge-watchdog-nobody again`);
      // The login is refused: that is the answer, no further look.
      expect(lines.filter((l) => /looking again/.test(l))).toHaveLength(1);
    } finally {
      await w.settle();
      await sshd?.stop();
    }
  }, 90_000);

  it('does not look again once Packer has connected', async () => {
    const port = await freeLocalPort();
    const { w, lines } = watchdog(port);
    await until(() => lines.some((l) => /looking again in 15 s/.test(l)), 20);
    w.observe(ui('Connected to SSH!'));
    await w.settle();
    const seen = lines.length;
    await new Promise((r) => setTimeout(r, 16_000));
    expect(lines).toHaveLength(seen);
    expect(w.verdict?.cause).toBe('connection-refused');
  }, 60_000);
});
