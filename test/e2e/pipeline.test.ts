/**
 * `labforge pipeline` end to end on local defaults (the demo appliance, TCG, file:// bucket), for both build
 * types into one output directory: the published files, their checksums, the catalog and portal listing both
 * releases, and each OVA's build type read back by detect-build-type. The pre-warmed OVA is then read from
 * its own disk without booting it (sealed: marker, warm manifest, no key, no host key, no machine-id, no
 * cloud-init state; the console password only as a hash), and booted once as a hypervisor boots an imported
 * disk (firmware → its own GRUB, no -kernel) with an attendee's fresh NoCloud seed: it boots, the attendee
 * and the console-password user get in, and the lab resumes instead of initializing.
 */
import { describe, it, expect, beforeAll, afterAll } from '@jest/globals';
import { createHash } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { createReadStream, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli } from '../support/run-cli.js';
import { createSeed, removeSeed, seedQemuArgs } from '../../actions/lib/cloud-init-seed.js';
import { kvmAvailable, startVm } from '../../actions/lib/qemu-vm.js';
import { connectSsh } from '../../actions/lib/ssh-remote.js';
import { diagnoseSsh } from '../../actions/lib/ssh-diagnose.js';
import { typeOnConsole } from '../support/console-keys.js';
import { ensureDemoBase } from '../support/tiny-guest.js';

const VERSION = '0.9.0';
/** The console password the build takes as a secret (LABFORGE_CONSOLE_PASSWORD); only its hash may reach the image. */
const CONSOLE_PASSWORD = 'workshop-Console-9';
let out: string;

const sha256 = (file: string) =>
  new Promise<string>((resolve, reject) => {
    const h = createHash('sha256');
    createReadStream(file)
      .on('data', (d) => h.update(d))
      .on('end', () => resolve(h.digest('hex')))
      .on('error', reject);
  });

const findFiles = (dir: string, pattern: RegExp): string[] =>
  readdirSync(dir, { recursive: true, encoding: 'utf8' }).filter((f) => pattern.test(f));

beforeAll(async () => {
  // The base image is cached by the hash of its inputs: built here so that the pipelines below time only themselves.
  await ensureDemoBase();
  out = mkdtempSync(join(tmpdir(), 'labforge-pipeline-e2e-'));
}, 900_000);

afterAll(() => {
  if (out) rmSync(out, { recursive: true, force: true });
});

describe('labforge pipeline input', () => {
  it('refuses an unknown build type before any work (exit 2, the input named)', async () => {
    const r = await runCli(['pipeline', '--build-type', 'fast', '--out', join(out, 'never')]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("build-type: 'fast' is not one of standard, prewarmed");
    expect(existsSync(join(out, 'never'))).toBe(false);
  });
});

describe.each(['standard', 'prewarmed'] as const)('labforge pipeline --build-type %s', (buildType) => {
  const name = `demo-lab-${buildType}-${VERSION}`;
  const releaseDir = () => join(out, 'bucket', 'releases', `v${VERSION}`, buildType);
  let run: { code: number; stdout: string; stderr: string };

  beforeAll(async () => {
    run = await runCli(['pipeline', '--build-type', buildType, '--version', VERSION, '--out', out], { timeoutMs: 1_200_000, env: { LABFORGE_CONSOLE_PASSWORD: CONSOLE_PASSWORD } });
  }, 1_250_000);

  it('succeeds and ends with the phase table and where the outputs are', () => {
    if (run.code !== 0) throw new Error(`pipeline failed (${run.code}):\n${run.stderr.slice(-4000)}`);
    const table = run.stdout;
    for (const phase of ['detect', 'build', 'warm', 'pack', 'upload', 'portal', 'total']) expect(table).toMatch(new RegExp(`^${phase}\\s`, 'm'));
    // packer-build streamed Packer's phases as groups: a real qemu build booted, waited for SSH, provisioned.
    for (const group of ['packer: boot', 'packer: wait-ssh', 'packer: provision', 'packer: shutdown']) expect(run.stderr).toContain(`── ${group} ──`);
    expect(run.stderr).toMatch(/seed: nocloud user-data authorizing a new ed25519 key for labforge; login user lab \(console password set/);
    if (buildType === 'standard') expect(table).toMatch(/^warm\s+-\s+\(standard build: no warm\)/m);
    else expect(table).toMatch(/^warm\s+\d+\.\d s\s+\S+prewarmed-0\.9\.0\.qcow2/m);
    expect(table).toContain(`file://${releaseDir()}/${name}.ova`);
    expect(table).toContain(`Portal: file://${join(out, 'bucket', 'index.html')}`);
  });

  it('publishes the OVA with its checksum and metadata companions, and the checksums match', async () => {
    const ova = join(releaseDir(), `${name}.ova`);
    expect(readdirSync(releaseDir()).sort()).toEqual([`${name}.metadata.json`, `${name}.ova`, `${name}.ova.sha256`]);
    const digest = await sha256(ova);
    expect(readFileSync(`${ova}.sha256`, 'utf8')).toBe(`${digest}  ${name}.ova\n`);
    expect(spawnSync('sha256sum', ['-c', `${name}.ova.sha256`], { cwd: releaseDir(), encoding: 'utf8' }).stdout).toBe(`${name}.ova: OK\n`);
    const metadata = JSON.parse(readFileSync(join(releaseDir(), `${name}.metadata.json`), 'utf8')) as Record<string, unknown>;
    expect(metadata).toMatchObject({ name: `${name}.ova`, appliance: 'demo-lab', version: VERSION, buildType, sha256: digest });
    // the local copy next to the bucket is the same file
    expect(await sha256(join(out, `${name}.ova`))).toBe(digest);
  });

  it('the OVA says its build type, read back by detect-build-type', async () => {
    const r = await runCli(['detect-build-type', '--ova', join(releaseDir(), `${name}.ova`)]);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ 'build-type': buildType, version: VERSION, source: 'ova' });
    // The OVF declares the manifest's OS and profile: Debian 64-bit, 2 vCPUs, 1024 MiB.
    const ovf = spawnSync('tar', ['-xOf', join(releaseDir(), `${name}.ova`), `${name}.ovf`], { encoding: 'utf8' }).stdout;
    expect(ovf).toContain('ovf:id="96"');
    expect(ovf).toContain('vmw:osType="debian11_64Guest"');
    expect(ovf).toMatch(/<rasd:VirtualQuantity>2<\/rasd:VirtualQuantity>/);
    expect(ovf).toMatch(/<rasd:VirtualQuantity>1024<\/rasd:VirtualQuantity>/);
  });

  it('lists the release in the catalog and the portal', () => {
    const catalog = JSON.parse(readFileSync(join(out, 'bucket', 'index.json'), 'utf8')) as { releases: { version: string; buildType: string }[] };
    expect(catalog.releases).toEqual(expect.arrayContaining([expect.objectContaining({ appliance: 'demo-lab', version: VERSION, buildType })]));
    expect(readFileSync(join(out, 'bucket', 'index.html'), 'utf8')).toContain(`${name}.ova`);
    expect(readFileSync(join(out, 'bucket', 'DOWNLOADS.md'), 'utf8')).toContain(`${name}.ova`);
  });

  it('leaves no QEMU and no overlay behind', () => {
    expect(findFiles(out, /overlay\.qcow2$/)).toEqual([]);
    expect(spawnSync('pgrep', ['-f', `qemu-system.*${out}`]).status).toBe(1);
    expect(existsSync(join(out, 'bucket', 'releases', `v${VERSION}`, buildType, `${name}.ova.labforge-partial`))).toBe(false);
  });
});

/** The first partition of a disk image file (dos label, starting at sector 2048), as a file debugfs reads. */
function rootPartition(ova: string, work: string, name: string): string {
  const x = (cmd: string, args: string[]) => {
    const r = spawnSync(cmd, args, { cwd: work, encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed: ${r.stderr}`);
    return r.stdout;
  };
  x('tar', ['-xf', ova, `${name}-disk1.vmdk`]);
  x('qemu-img', ['convert', '-O', 'raw', `${name}-disk1.vmdk`, 'disk.raw']);
  const table = x('sfdisk', ['--json', 'disk.raw']);
  const start = (JSON.parse(table) as { partitiontable: { partitions: { start: number }[] } }).partitiontable.partitions[0]!.start;
  x('dd', ['if=disk.raw', 'of=root.ext4', 'bs=1M', 'iflag=skip_bytes', `skip=${start * 512}`, 'conv=sparse', 'status=none']);
  rmSync(join(work, 'disk.raw'));
  return join(work, 'root.ext4');
}

describe('the published pre-warmed demo OVA', () => {
  const name = `demo-lab-prewarmed-${VERSION}`;
  const ova = () => join(out, 'bucket', 'releases', `v${VERSION}`, 'prewarmed', `${name}.ova`);
  let work: string;
  let root: string;
  const debugfs = (request: string) => spawnSync('debugfs', ['-R', request, root], { encoding: 'utf8' }).stdout;

  beforeAll(() => {
    work = mkdtempSync(join(tmpdir(), 'labforge-ova-disk-'));
    root = rootPartition(ova(), work, name);
  }, 300_000);
  afterAll(() => rmSync(work, { recursive: true, force: true }));

  it('is sealed, read from its disk without booting it', () => {
    expect(debugfs('cat /etc/hedgehog-lab/build-type')).toBe('prewarmed\n');
    const manifest = JSON.parse(debugfs('cat /var/lib/hedgehog-lab/warm-manifest.json')) as { readiness: { exitCode: number } };
    expect(manifest.readiness.exitCode).toBe(0);
    // No authorized key of any user, no SSH host key, an empty machine-id, no cloud-init instance or seed.
    for (const home of ['/root', '/home/labforge', '/home/lab']) expect(debugfs(`ls -l ${home}/.ssh`)).not.toMatch(/authorized_keys/);
    expect(debugfs('ls -l /etc/ssh')).not.toMatch(/ssh_host_\w+_key/);
    expect(debugfs('stat /etc/machine-id')).toMatch(/Size: 0\b/);
    expect(debugfs('ls /var/lib/cloud')).not.toMatch(/instances?\b|seed|sem\b/);
    // The console password is in the image only as its SHA-512 crypt hash.
    const shadow = debugfs('cat /etc/shadow');
    expect(shadow).toMatch(/^lab:\$6\$[^:]+:/m);
    expect(shadow).toMatch(/^labforge:[!*]/m);
    expect(spawnSync('grep', ['-c', CONSOLE_PASSWORD, root], { encoding: 'utf8' }).stdout.trim()).toBe('0');
  });

  it('has drivers for the controllers its OVF declares and hypervisors attach (LSI Logic, E1000, AHCI)', () => {
    const version = debugfs('ls -p /usr/lib/modules').split('\n').map((l) => l.split('/')[5]).find((n) => n && /^\d/.test(n));
    expect(version).toBeDefined();
    const kernel = `/usr/lib/modules/${version}/kernel`;
    expect(debugfs(`ls ${kernel}/drivers/message/fusion`)).toContain('mptspi.ko');
    expect(debugfs(`ls ${kernel}/drivers/net/ethernet/intel/e1000`)).toContain('e1000.ko');
    expect(debugfs(`ls ${kernel}/drivers/ata`)).toContain('ahci.ko');
  });

  it('boots as a hypervisor boots it, lets an attendee in, and the lab resumes', async () => {
    const disk = join(work, 'disk.qcow2');
    expect(spawnSync('qemu-img', ['convert', '-O', 'qcow2', join(work, `${name}-disk1.vmdk`), disk]).status).toBe(0);
    const seed = await createSeed({ user: 'attendee', parentDir: work, keyComment: 'attendee' });
    // Firmware → the disk's own GRUB (no -kernel); the root file system is found by its label, whatever the bus.
    const vm = await startVm({ image: disk, snapshot: true, accelerator: kvmAvailable() ? 'kvm' : 'tcg', memoryMiB: 1024, cpus: 2, serialLog: join(work, 'serial.log'), extraArgs: seedQemuArgs(seed) });
    try {
      const ready = await vm.waitForSerial(/hedgehog-lab: ready build-type=(\S+) mode=(\S+)/, 600_000);
      expect(ready[1]).toBe('prewarmed');
      expect(ready[2]).toBe('resume');
      const session = await connectSsh({ host: '127.0.0.1', port: vm.sshPort, username: 'attendee', privateKey: seed.privateKey, timeoutMs: 300_000, refusedKeyAttempts: Number.POSITIVE_INFINITY });
      try {
        const r = await session.exec('cat /etc/hedgehog-lab/build-type; sudo -n hedgehog-lab status --json');
        expect(r.code).toBe(0);
        expect(r.stdout).toMatch(/^prewarmed\n/);
      } finally {
        session.close();
      }
      // The login user logs in on the console (tty1) with the build's console password, typed on the VM's
      // keyboard; the attendee's session then sees that login. (Password logins over SSH stay off.)
      const check = await connectSsh({ host: '127.0.0.1', port: vm.sshPort, username: 'attendee', privateKey: seed.privateKey, timeoutMs: 60_000 });
      try {
        const getty = await check.exec('for i in $(seq 60); do systemctl is-active -q getty@tty1 && exit 0; sleep 1; done; exit 1');
        expect(getty.code).toBe(0);
        await new Promise((r) => setTimeout(r, 3_000));
        await typeOnConsole(vm.qmpSocket, `lab\n`);
        await new Promise((r) => setTimeout(r, 5_000));
        await typeOnConsole(vm.qmpSocket, `${CONSOLE_PASSWORD}\n`);
        const who = await check.exec("for i in $(seq 90); do who | grep -Eq '^lab +tty1' && { who; exit 0; }; sleep 1; done; who; exit 1");
        expect(who.stdout).toMatch(/^lab +tty1/m);
        expect(who.code).toBe(0);
        // Over SSH the password is refused: it is a console password.
        const overSsh = await diagnoseSsh({ host: '127.0.0.1', port: vm.sshPort, username: 'lab', password: CONSOLE_PASSWORD, timeoutSeconds: 20, waitSeconds: 0, command: 'true', checkSudo: false });
        expect(overSsh.cause).toBe('password-auth-disabled');
      } finally {
        check.close();
      }
    } finally {
      await vm.kill();
      await removeSeed(seed);
    }
  }, 900_000);
});
