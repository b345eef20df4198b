/**
 * What an upload must refuse, with real files, the real CLI and bundle, a real directory and the GCS emulator:
 * a source that changes while it is being uploaded (nothing is published, the staging is cleaned up), and
 * inputs that cannot be a release — an empty file, a file that is not an OVA, an OVA whose own properties
 * contradict the inputs or are not a version, a destination that leaves its prefix — refused before anything
 * slow, with one line naming the input. Also `labforge portal` at a destination that has no catalog.
 */
import { describe, expect, it } from '@jest/globals';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { appendFileSync, closeSync, existsSync, futimesSync, mkdirSync, mkdtempSync, openSync, readdirSync, renameSync, statSync, truncateSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { SourceChangedError } from '../../actions/lib/artifact-store.js';
import { InputError } from '../../actions/lib/inputs.js';
import { uploadRelease, type UploadReleaseOptions } from '../../actions/lib/release-upload.js';
import { parseDestination } from '../../actions/lib/upload-options.js';
import { useGcsEmulator } from '../support/gcs-fixture.js';
import { writeOvaFixture } from '../support/ova-fixture.js';
import { writeOvaWithPayload } from '../support/ova-payload.js';
import { repoRoot, runBundledAction } from '../support/run-action.js';
import { runCli } from '../support/run-cli.js';

const MiB = 1024 * 1024;
const fastRetry = { attempts: 4, baseDelayMs: 5, maxDelayMs: 20 };
const CHANGED = /changed while it was being uploaded \((.+)\); nothing was published; upload it again once it is complete$/;

const fx = useGcsEmulator({ bucketPrefix: 'refusals', dirPrefix: 'labforge-upload-refusals-' });

const props = (version: string, buildType = 'standard') => ({ appliance: 'demo-lab', buildType, version });

/** A real OVA of `mib` MiB (plus the descriptor) in its own directory. */
async function ova(version: string, mib: number, buildType = 'standard'): Promise<string> {
  const dir = mkdtempSync(join(fx.dir, 'src-'));
  return writeOvaWithPayload(join(dir, `demo-lab-${buildType}-${version}.ova`), props(version, buildType), randomBytes(mib * MiB));
}

function options(path: string, destination: string, extra: Partial<UploadReleaseOptions> = {}): UploadReleaseOptions {
  return {
    path: [path],
    destination: parseDestination(destination),
    endpoint: fx.emulator.endpoint,
    parallelism: 2,
    chunkSizeMib: 1,
    overwrite: false,
    makePublic: false,
    signedUrlHours: 0,
    retentionKeep: 0,
    retentionDryRun: false,
    portal: true,
    progressIntervalMs: 0,
    retry: fastRetry,
    ...extra,
  };
}

/** Runs `change` once, on the first progress line of the upload (after the first block or part is done). */
function onFirstProgress(change: () => void): (line: string) => void {
  let done = false;
  return (line) => {
    if (!done && /^upload \S+: \d/.test(line)) {
      done = true;
      change();
    }
  };
}

async function expectSourceChanged(p: Promise<unknown>, change: RegExp): Promise<SourceChangedError> {
  const e = await p.then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(e).toBeInstanceOf(SourceChangedError);
  const err = e as SourceChangedError;
  expect(err.message).toMatch(CHANGED);
  expect(err.change).toMatch(change);
  return err;
}

/** Every file under a directory (relative paths), or [] when it does not exist. */
function filesUnder(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((d) => d.isFile())
    .map((d) => join(d.parentPath, d.name).slice(dir.length + 1))
    .sort();
}

describe('a source that changes during the upload is not published (file://)', () => {
  it('refuses a file truncated after the first block, leaving nothing at the destination', async () => {
    const src = await ova('1.0.0', 24);
    const size = statSync(src).size;
    const dest = join(fx.dir, 'file-truncated');
    await expectSourceChanged(uploadRelease(options(src, `file://${dest}`, { log: onFirstProgress(() => truncateSync(src, MiB)) })), new RegExp(`^size ${size} → ${MiB} bytes$`));
    expect(filesUnder(dest)).toEqual([]);
  });

  it('refuses a file appended to while it is copied', async () => {
    const src = await ova('1.0.1', 24);
    const size = statSync(src).size;
    const dest = join(fx.dir, 'file-appended');
    await expectSourceChanged(uploadRelease(options(src, `file://${dest}`, { log: onFirstProgress(() => appendFileSync(src, randomBytes(MiB))) })), new RegExp(`^size ${size} → ${size + MiB} bytes$`));
    expect(filesUnder(dest)).toEqual([]);
  });

  it('refuses a file replaced by rename (a new inode) while the old one is read', async () => {
    const src = await ova('1.0.2', 24);
    const dest = join(fx.dir, 'file-renamed');
    const other = await ova('1.0.2', 24);
    await expectSourceChanged(uploadRelease(options(src, `file://${dest}`, { log: onFirstProgress(() => renameSync(other, src)) })), /^replaced by another file$/);
    expect(filesUnder(dest)).toEqual([]);
  });

  it('refuses a file truncated after it was found but before its bytes are read (the size it had at the start is the size published)', async () => {
    const src = await ova('1.0.3', 24);
    const size = statSync(src).size;
    const dest = join(fx.dir, 'file-before-open');
    const log = (line: string) => {
      if (line.startsWith('publishing ')) truncateSync(src, MiB);
    };
    await expectSourceChanged(uploadRelease(options(src, `file://${dest}`, { log })), new RegExp(`^size ${size} → ${MiB} bytes$`));
    expect(filesUnder(dest)).toEqual([]);
  });
});

describe('a source that changes during the upload is not published (GCS emulator)', () => {
  const published = () => fx.emulator.objectNames(fx.bucket);

  it('refuses a file truncated after the first part: no object, no staging, no catalog', async () => {
    const src = await ova('2.0.0', 16);
    const size = statSync(src).size;
    await expectSourceChanged(uploadRelease(options(src, `gs://${fx.bucket}/labs`, { log: onFirstProgress(() => truncateSync(src, MiB)) })), new RegExp(`^size ${size} → ${MiB} bytes$`));
    expect(published()).toEqual([]);
  });

  it('refuses a file appended to during the upload, before the final compose', async () => {
    const src = await ova('2.0.1', 8);
    const size = statSync(src).size;
    await expectSourceChanged(uploadRelease(options(src, `gs://${fx.bucket}/labs`, { log: onFirstProgress(() => appendFileSync(src, 'more')) })), new RegExp(`^size ${size} → ${size + 4} bytes$`));
    expect(published()).toEqual([]);
    expect(fx.emulator.requests.filter((q) => q.path.includes(fx.bucket) && q.path.endsWith('/compose') && q.query.ifGenerationMatch === '0')).toEqual([]);
  });

  it('refuses a file replaced by rename during the upload', async () => {
    const src = await ova('2.0.2', 8);
    const other = await ova('2.0.2', 8);
    await expectSourceChanged(uploadRelease(options(src, `gs://${fx.bucket}/labs`, { log: onFirstProgress(() => renameSync(other, src)) })), /^replaced by another file$/);
    expect(published()).toEqual([]);
  });

  it('refuses a file rewritten in place (same size, new modification time)', async () => {
    const src = await ova('2.0.3', 8);
    const rewrite = () => {
      const fd = openSync(src, 'r+');
      writeSync(fd, randomBytes(4096), 0, 4096, 6 * MiB);
      futimesSync(fd, new Date(Date.now() + 5000), new Date(Date.now() + 5000));
      closeSync(fd);
    };
    await expectSourceChanged(uploadRelease(options(src, `gs://${fx.bucket}/labs`, { log: onFirstProgress(rewrite) })), /^modified$/);
    expect(published()).toEqual([]);
  });

  it('labforge upload exits 1 when the file is truncated mid-upload, and publishes nothing', async () => {
    const src = await ova('2.1.0', 24);
    const size = statSync(src).size;
    const args = ['upload', '--path', src, '--destination', `gs://${fx.bucket}/labs`, '--endpoint', fx.emulator.endpoint, '--chunk-size-mib', '1', '--parallelism', '2', '--portal'];
    // Hold parts 5 and later (503, retried) so that the truncation lands mid-upload.
    fx.emulator.injectFault({ match: { object: /part-0000(0[5-9]|[12]\d)$/ }, times: 1000, action: { status: 503 } });
    const before = fx.emulator.requests.length;
    const child = spawn(process.execPath, [join(repoRoot, 'bin', 'labforge'), ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<number>((r) => child.once('close', (c) => r(c ?? -1)));
    for (let i = 0; i < 400 && !fx.emulator.requests.slice(before).some((q) => q.object?.endsWith('part-000005')); i++) await new Promise((r) => setTimeout(r, 25));
    expect(fx.emulator.requests.slice(before).some((q) => q.object?.endsWith('part-000005'))).toBe(true);
    truncateSync(src, MiB);
    fx.emulator.clearFaults();
    const code = await exited;
    expect({ code, stderr: stderr.split('\n').slice(-3).join('\n') }).toMatchObject({ code: 1 });
    expect(stderr).toMatch(new RegExp(`labforge upload: ${src.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')} changed while it was being uploaded \\(size ${size} → ${MiB} bytes\\); nothing was published; upload it again once it is complete\\n`));
    expect(published()).toEqual([]);
  }, 60_000);
});

describe('inputs that cannot be a release are refused before anything slow, naming the input', () => {
  it('an empty file: labforge upload exits 2 with one line', async () => {
    const empty = join(fx.dir, 'demo-lab-standard-3.0.0.ova');
    writeFileSync(empty, '');
    const dest = join(fx.dir, 'dest-empty');
    const run = await runCli(['upload', '--path', empty, '--destination', `file://${dest}`, '--version', '3.0.0', '--build-type', 'standard']);
    expect(run.code).toBe(2);
    expect(run.stderr).toBe(`labforge upload: path: ${empty} is empty (0 bytes) (give the finished OVA; an empty file is never a release)\n`);
    expect(existsSync(dest)).toBe(false);
  });

  it('an empty file: the bundled action fails with ::error, before any request', async () => {
    const empty = join(fx.dir, 'empty.ova');
    writeFileSync(empty, '');
    const before = fx.emulator.requests.length;
    const run = await runBundledAction('upload-artifact', { inputs: { path: empty, destination: `gs://${fx.bucket}/labs`, endpoint: fx.emulator.endpoint } });
    expect(run.code).toBe(1);
    expect(run.errors).toEqual([`::error title=upload-artifact::path: ${empty} is empty (0 bytes) (give the finished OVA; an empty file is never a release)`]);
    expect(fx.emulator.requests.length).toBe(before);
  });

  it('a file that is not an OVA, unless allow-non-ova is given', async () => {
    const bytes = join(fx.dir, 'demo-lab-standard-3.1.0.ova');
    writeFileSync(bytes, randomBytes(100_000));
    const dest = join(fx.dir, 'dest-not-ova');
    const args = ['upload', '--path', bytes, '--destination', `file://${dest}`, '--version', '3.1.0', '--build-type', 'standard'];
    const run = await runCli(args);
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(new RegExp(`^labforge upload: path: ${bytes.replace(/[.]/g, '\\.')} is not an OVA \\(is not a tar archive .*\\) \\(give the \\.ova that labforge pack-ova made, or set allow-non-ova to publish another kind of file\\)\\n$`));
    expect(existsSync(dest)).toBe(false);
    // The explicit option publishes it (generic files stay possible on purpose).
    const allowed = await runCli([...args, '--allow-non-ova']);
    expect(allowed.stderr).not.toContain('labforge upload:');
    expect(allowed.code).toBe(0);
    expect(existsSync(join(dest, 'releases/v3.1.0/standard/demo-lab-standard-3.1.0.ova'))).toBe(true);
  });

  it('a tar whose first member is not the .ovf descriptor', async () => {
    const tar = await writeOvaFixture(join(fx.dir, 'disk-first.ova'), { diskFirst: true, properties: props('3.2.0') });
    const e = await uploadRelease(options(tar, `file://${join(fx.dir, 'dest-disk-first')}`)).catch((err: unknown) => err);
    expect(e).toBeInstanceOf(InputError);
    expect((e as InputError).input).toBe('path');
    expect((e as Error).message).toMatch(/is not an OVA \(is not a valid OVA: its first entry is 'disk1\.vmdk', but the OVF descriptor \(\*\.ovf\) must come first\)/);
    expect(existsSync(join(fx.dir, 'dest-disk-first'))).toBe(false);
  });

  it('version and build-type inputs that contradict the OVA, naming both values', async () => {
    const src = await writeOvaFixture(join(fx.dir, 'demo-lab-standard-1.5.0.ova'), { properties: props('1.5.0') });
    const dest = join(fx.dir, 'dest-contradict');
    const v = await runCli(['upload', '--path', src, '--destination', `file://${dest}`, '--version', '1.6.0', '--build-type', 'standard']);
    expect(v.code).toBe(2);
    expect(v.stderr).toBe(
      "labforge upload: version: '1.6.0' contradicts demo-lab-standard-1.5.0.ova, whose OVF property version is '1.5.0' (leave version empty to publish the OVA as the version it was packed as, or repack it with the version you mean)\n",
    );
    const t = await runCli(['upload', '--path', src, '--destination', `file://${dest}`, '--version', '1.5.0', '--build-type', 'prewarmed']);
    expect(t.code).toBe(2);
    expect(t.stderr).toMatch(/^labforge upload: build-type: 'prewarmed' contradicts demo-lab-standard-1\.5\.0\.ova, whose OVF property buildType is 'standard' \(/);
    expect(existsSync(dest)).toBe(false);
    // Agreeing inputs publish it.
    expect((await runCli(['upload', '--path', src, '--destination', `file://${dest}`, '--version', '1.5.0', '--build-type', 'standard'])).code).toBe(0);
  });

  it('an OVA whose own version property is not a semantic version, before anything is written anywhere', async () => {
    const evil = await writeOvaFixture(join(fx.dir, 'evil.ova'), { properties: { appliance: 'demo-lab', buildType: 'standard', version: '1.0.0/../../evil' } });
    const dest = join(fx.dir, 'dest-evil');
    mkdirSync(dest);
    const run = await runCli(['upload', '--path', evil, '--destination', `file://${dest}`, '--portal']);
    expect(run.code).toBe(2);
    expect(run.stderr).toBe("labforge upload: path: evil.ova says its version is '1.0.0/../../evil' (OVF property version), which is not a semantic version (repack the image with labforge pack-ova --version MAJOR.MINOR.PATCH)\n");
    expect(filesUnder(dest)).toEqual([]);
    expect(existsSync(join(fx.dir, 'evil'))).toBe(false);
    // With a version input the OVA's own version is still checked.
    const given = await runCli(['upload', '--path', evil, '--destination', `file://${dest}`, '--version', '1.0.0', '--build-type', 'standard']);
    expect(given.code).toBe(2);
    expect(given.stderr).toContain("says its version is '1.0.0/../../evil'");
  });

  it.each([
    [`gs://BUCKET/../x`, "has a '.' or '..' segment in its prefix"],
    [`gs://BUCKET/labs/./x`, "has a '.' or '..' segment in its prefix"],
    [`gs://BUCKET/labs//x`, "has an empty segment ('//') in its prefix"],
  ])('a gs:// destination %s, at once and without a request', async (raw, problem) => {
    const src = await writeOvaFixture(join(fx.dir, 'ok.ova'), { properties: props('1.0.0') });
    const destination = raw.replace('BUCKET', fx.bucket);
    const before = fx.emulator.requests.length;
    const t0 = Date.now();
    const run = await runCli(['upload', '--path', src, '--destination', destination, '--endpoint', fx.emulator.endpoint]);
    expect(run.code).toBe(2);
    expect(run.stderr).toBe(`labforge upload: destination: '${destination}' ${problem} (give a plain prefix such as gs://my-bucket/labs (no //, . or .. segments))\n`);
    expect(Date.now() - t0).toBeLessThan(5000);
    expect(fx.emulator.requests.length).toBe(before);
    expect(fx.emulator.objectNames(fx.bucket)).toEqual([]);
  });

  it.each([
    ['a%2F..%2F..', 'has an encoded slash (%2F or %5C) in its path'],
    ['%2e%2e/x', "has a '.' or '..' path segment"],
    ['a/../..', "has a '.' or '..' path segment"],
    ['a%5C..', 'has an encoded slash (%2F or %5C) in its path'],
  ])('a file:// destination <dir>/%s: decoded first, then checked; nothing is written', async (tail, problem) => {
    const src = await writeOvaFixture(join(fx.dir, 'ok.ova'), { properties: props('1.0.0') });
    const base = mkdtempSync(join(fx.dir, 'enc-'));
    const dir = join(base, 'share');
    mkdirSync(dir);
    const destination = `file://${dir}/${tail}`;
    const run = await runCli(['upload', '--path', src, '--destination', destination]);
    expect(run.code).toBe(2);
    expect(run.stderr).toBe(`labforge upload: destination: '${destination}' ${problem} (use a plain absolute directory such as file:///srv/labs or file:///media/usb/labs)\n`);
    expect(filesUnder(base)).toEqual([]);
    expect(readdirSync(base)).toEqual(['share']);
  });
});

describe('labforge portal', () => {
  it('refuses a destination without a catalog, creating nothing', async () => {
    const missing = join(fx.dir, 'no-such-dir');
    const run = await runCli(['portal', '--destination', `file://${missing}`]);
    expect(run.code).toBe(2);
    expect(run.stderr).toBe(`labforge portal: destination: file://${missing}/index.json does not exist: no release was ever published there (give the destination that labforge upload / upload-artifact published to (it holds index.json))\n`);
    expect(existsSync(missing)).toBe(false);
    const empty = mkdtempSync(join(fx.dir, 'empty-share-'));
    const again = await runCli(['portal', '--destination', `file://${empty}`]);
    expect(again.code).toBe(2);
    expect(readdirSync(empty)).toEqual([]);
  });

  it('refuses a gs:// prefix without a catalog, writing nothing', async () => {
    const run = await runCli(['portal', '--destination', `gs://${fx.bucket}/nothing-here`, '--endpoint', fx.emulator.endpoint]);
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(new RegExp(`^labforge portal: destination: gs://${fx.bucket}/nothing-here/index\\.json does not exist`));
    expect(fx.emulator.objectNames(fx.bucket)).toEqual([]);
  });
});
