import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { classifySerialLine, relevantSerialLines, serialLogProblem } from '../../actions/lib/serial-log.js';

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'labforge-serial-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('relevantSerialLines', () => {
  it('names the lines that explain why a guest is unreachable', () => {
    const cases: [string, string][] = [
      ['[    2.345678] Kernel panic - not syncing: VFS: Unable to mount root fs on unknown-block(0,0)', 'kernel-panic'],
      ['You are in emergency mode. After logging in, type "journalctl -xb" to view system logs', 'emergency-mode'],
      ['[ TIME ] Timed out waiting for device /dev/disk/by-uuid/1234.', 'disk'],
      ['dhclient[412]: No DHCPOFFERS received.', 'network'],
      ['cloud-init[600]: 2024-05-01 10:00:00,000 - util.py[WARNING]: Failed loading yaml blob', 'cloud-init'],
      ['subiquity: Traceback (most recent call last):', 'autoinstall'],
      ['sshd[700]: fatal: Missing privilege separation directory: /run/sshd', 'sshd'],
      ['[FAILED] Failed to start OpenBSD Secure Shell server.', 'sshd'],
      ['[FAILED] Failed to start Apply Kernel Variables.', 'systemd-failed'],
      ['Out of memory: Killed process 812 (qemu-ga)', 'out-of-memory'],
      ['lab login: ', 'login-prompt'],
    ];
    for (const [line, finding] of cases) expect([line, classifySerialLine(line)]).toEqual([line, finding]);
    expect(classifySerialLine('[  OK  ] Started OpenBSD Secure Shell server.')).toBeUndefined();
    expect(classifySerialLine('[    0.000000] Linux version 6.1.0-18-amd64')).toBeUndefined();
  });

  it('strips terminal escapes and carriage returns, keeps line numbers and the tail', async () => {
    const text = ['boot', '\x1b[0;1;31m[FAILED]\x1b[0m Failed to start \x1b[0;1;39mRaise network interfaces\x1b[0m.\r', 'x', 'y'].join('\n');
    const e = await relevantSerialLines({ text }, { tailLines: 2 });
    expect(e.lines).toEqual([{ line: 2, text: '[FAILED] Failed to start Raise network interfaces.', finding: 'network' }]);
    expect(e.tail).toEqual(['x', 'y']);
    expect(e.total).toBe(4);
  });

  it('keeps the last matches when there are many', async () => {
    const text = Array.from({ length: 40 }, (_, i) => `dhclient: No DHCPOFFERS received (${i})`).join('\n');
    const e = await relevantSerialLines({ text }, { maxLines: 3 });
    expect(e.matched).toBe(40);
    expect(e.lines.map((l) => l.line)).toEqual([38, 39, 40]);
  });

  it('reads a file', async () => {
    const path = join(dir, 'serial.log');
    writeFileSync(path, 'Kernel panic - not syncing\n');
    const e = await relevantSerialLines({ path });
    expect(e.lines[0]?.finding).toBe('kernel-panic');
    expect(e.problem).toBeUndefined();
  });
});

describe('a serial log with no evidence is reported in one line (which path, why)', () => {
  it('does not exist', async () => {
    const path = join(dir, 'none.log');
    const e = await relevantSerialLines({ path });
    expect(e).toEqual({ lines: [], matched: 0, tail: [], total: 0, problem: `serial log ${path} does not exist: the VM wrote none (it never started, or its serial console goes elsewhere)` });
  });

  it('is empty', async () => {
    const path = join(dir, 'empty.log');
    writeFileSync(path, '');
    expect((await relevantSerialLines({ path })).problem).toBe(`serial log ${path} is empty: the guest wrote nothing to its serial console (no console=ttyS0 on its kernel command line, or it never got that far)`);
  });

  it('is a directory, or under a file', async () => {
    expect(await serialLogProblem(dir)).toMatch(new RegExp(`^serial log ${dir} is not a file \\(a directory\\): `));
    const file = join(dir, 'plain');
    writeFileSync(file, 'x\n');
    expect(await serialLogProblem(join(file, 'serial.log'))).toBe(`serial log ${file}/serial.log does not exist: a part of its path is not a directory`);
  });

  it('is a special file (a FIFO would block the read)', async () => {
    const fifo = join(dir, 'fifo.log');
    execFileSync('mkfifo', [fifo]);
    expect((await relevantSerialLines({ path: fifo })).problem).toBe(`serial log ${fifo} is not a file (a special file): give the file QEMU writes the serial console to (-serial file:PATH)`);
  });

  it('a log that holds lines has no problem', async () => {
    const path = join(dir, 'ok.log');
    writeFileSync(path, 'login: \n');
    expect(await serialLogProblem(path)).toBeUndefined();
  });
});
