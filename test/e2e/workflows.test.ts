/**
 * The button, pressed here: the workflows users click (.github/workflows/build-on-demand.yml and release.yml,
 * which call the reusable build.yml) run end to end through the runner stand-in (test/support/workflow-runner:
 * GitHub's own workflow parser and expression evaluator; third-party actions only as named stand-ins) on the
 * demo appliance, under TCG, publishing to a file:// bucket. Each run is asserted by what it published, not
 * only by its status:
 *   1. build-on-demand, standard 0.2.0, upload → releases/v0.2.0/standard, checksums, catalog, portal, summary;
 *   2. build-on-demand, prewarmed 0.2.0 → starts from the published standard OVA (no Packer build), records it;
 *   3. release.yml for the pushed tag v0.3.0 → standard release, the GitHub release (API stand-in) with assets;
 *   4. release.yml for v0.3.0-prewarmed → no OS image built (starts from v0.3.0's standard OVA), released;
 *   5. a Packer build made to fail mid-way → the job fails, the build log is kept, nothing is published;
 *   6. a cancelled pre-warmed run (SIGTERM mid-warm) → no QEMU, overlay or seed left, post steps ran;
 * and the published OVAs are then booted once each as a hypervisor boots an imported disk: the standard one
 * initializes its lab on first boot, the pre-warmed one only resumes and lets the console user in. Per-job and
 * per-step times (the stand-in's own timing) are printed and written to $LABFORGE_WORKFLOW_TIMES if set.
 */
import { describe, it, expect, beforeAll, afterAll } from '@jest/globals';
import { createHash } from 'node:crypto';
import { execFileSync, spawnSync } from 'node:child_process';
import { appendFileSync, createReadStream, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Spec, Validation } from '@cyclonedx/cyclonedx-library';
import { createSeed, removeSeed, seedQemuArgs } from '../../actions/lib/cloud-init-seed.js';
import { kvmAvailable, startVm, type VmHandle } from '../../actions/lib/qemu-vm.js';
import { connectSsh } from '../../actions/lib/ssh-remote.js';
import { diagnoseSsh } from '../../actions/lib/ssh-diagnose.js';
import { typeOnConsole } from '../support/console-keys.js';
import { GitHubApiStandIn } from '../support/github-api-standin.js';
import { repoRoot } from '../support/run-action.js';
import { ensureDemoBase } from '../support/tiny-guest.js';
import { formatTimings, runWorkflow, type JobRun, type RunWorkflowOptions, type WorkflowRun } from '../support/workflow-runner/index.js';
import { importerReads } from '../support/ova-importer.js';

const REPO = 'labforge-e2e/labforge';
const TOKEN = 'ghs_workflow_e2e_token_0123456789abcdef';
/** The console password secret (LABFORGE_CONSOLE_PASSWORD): only its hash may reach the image, never a log. */
const CONSOLE_PASSWORD = 'workshop-Console-9';
const KVM_LABELS = ['self-hosted', 'linux', 'x64', 'kvm'];

let work: string;
let bucket: string;
let api: GitHubApiStandIn;
let sha: string;
const runs: Record<string, WorkflowRun> = {};

const sha256 = (file: string) =>
  new Promise<string>((resolve, reject) => {
    const h = createHash('sha256');
    createReadStream(file)
      .on('data', (d) => h.update(d))
      .on('end', () => resolve(h.digest('hex')))
      .on('error', reject);
  });

function options(over: Partial<RunWorkflowOptions> & Pick<RunWorkflowOptions, 'workflow' | 'event'>): RunWorkflowOptions {
  const runDir = over.runDir ?? mkdtempSync(join(work, 'run-'));
  return {
    repoDir: repoRoot,
    repository: REPO,
    repositories: { [REPO]: repoRoot },
    vars: { LABFORGE_DESTINATION: `file://${bucket}`, LABFORGE_APPLIANCE: '.labforge/packer/demo-lab', LABFORGE_ACCELERATOR: 'auto' },
    secrets: { LABFORGE_CONSOLE_PASSWORD: CONSOLE_PASSWORD },
    githubToken: TOKEN,
    runners: [['ubuntu-latest'], KVM_LABELS],
    // The release job talks to the GitHub API stand-in.
    env: { GITHUB_API_URL: api.url },
    runDir,
    // Progress on stderr (what a user watches in the Actions tab); every step's masked log in <runDir>/run.log.
    onProgress: (p) => {
      if (p.phase === 'job-end' || p.phase === 'step-end') process.stderr.write(`[workflow] ${p.job}${p.step ? ` / ${p.step}` : ''}: ${p.result ?? ''}\n`);
    },
    onLog: (job, line) => appendFileSync(join(runDir, 'run.log'), `${job} | ${line}\n`),
    ...over,
  };
}

const jobOf = (run: WorkflowRun, id: string): JobRun => {
  // The called workflow's job (build/build) before the caller's job of the same name (build).
  const job = run.jobs.find((j) => j.id.endsWith(`/${id}`)) ?? run.jobs.find((j) => j.id === id);
  if (!job) throw new Error(`no job ${id} in the run (jobs: ${run.jobs.map((j) => j.id).join(', ')})`);
  return job;
};

const stepOf = (job: JobRun, name: RegExp) => {
  const step = job.steps.find((s) => name.test(s.name));
  if (!step) throw new Error(`no step ${name} in job ${job.id} (steps: ${job.steps.map((s) => s.name).join(', ')})`);
  return step;
};

/** Why a run failed, for the assertion message: each failed step's log tail. */
const explain = (run: WorkflowRun) =>
  run.jobs
    .flatMap((j) => j.steps.filter((s) => s.outcome === 'failure').map((s) => `${j.id} / ${s.name}:\n${s.log.slice(-3000)}`))
    .join('\n\n');

function expectSuccess(run: WorkflowRun): void {
  if (run.conclusion !== 'success') throw new Error(`the run concluded ${run.conclusion}:\n${explain(run)}`);
}

/** Every log line and summary of a run: nothing in it may hold the console password or the token. */
const everything = (run: WorkflowRun) => run.jobs.flatMap((j) => [j.summary, ...j.steps.map((s) => s.log), ...j.posts.map((p) => p.log)]).join('\n');

/** The SBOM published beside the OVA: valid CycloneDX 1.6 listing the image's dpkg packages, recorded in the metadata and the catalog. */
async function expectSbom(dir: string, name: string): Promise<void> {
  const file = join(dir, `${name}.cdx.json`);
  const text = readFileSync(file, 'utf8');
  expect(await new Validation.JsonStrictValidator(Spec.Version.v1dot6).validate(text)).toBeNull();
  const bom = JSON.parse(text) as { components: { name: string; purl?: string }[] };
  const debs = bom.components.filter((c) => c.purl?.startsWith('pkg:deb/debian/')).map((c) => c.name);
  for (const pkg of ['openssh-server', 'cloud-init']) expect(debs).toContain(pkg);
  const facts = { format: 'CycloneDX 1.6', sha256: await sha256(file), components: bom.components.length };
  const metadata = JSON.parse(readFileSync(join(dir, `${name}.metadata.json`), 'utf8')) as { sbom?: unknown };
  expect(metadata.sbom).toMatchObject({ key: `${name}.cdx.json`, ...facts });
  const catalog = JSON.parse(readFileSync(join(bucket, 'index.json'), 'utf8')) as { releases: { name: string; sbom?: unknown }[] };
  expect(catalog.releases.find((r) => r.name === `${name}.ova`)?.sbom).toMatchObject(facts);
}

async function expectPublished(version: string, buildType: 'standard' | 'prewarmed'): Promise<{ ova: string; digest: string; metadata: Record<string, unknown> }> {
  const name = `demo-lab-${buildType}-${version}`;
  const dir = join(bucket, 'releases', `v${version}`, buildType);
  expect(readdirSync(dir).sort()).toEqual([`${name}.cdx.json`, `${name}.metadata.json`, `${name}.ova`, `${name}.ova.sha256`]);
  await expectSbom(dir, name);
  const ova = join(dir, `${name}.ova`);
  const digest = await sha256(ova);
  expect(spawnSync('sha256sum', ['-c', `${name}.ova.sha256`], { cwd: dir, encoding: 'utf8' }).stdout).toBe(`${name}.ova: OK\n`);
  const metadata = JSON.parse(readFileSync(join(dir, `${name}.metadata.json`), 'utf8')) as Record<string, unknown>;
  expect(metadata).toMatchObject({ name: `${name}.ova`, appliance: 'demo-lab', version, buildType, sha256: digest });
  const catalog = JSON.parse(readFileSync(join(bucket, 'index.json'), 'utf8')) as { releases: unknown[] };
  expect(catalog.releases).toEqual(expect.arrayContaining([expect.objectContaining({ appliance: 'demo-lab', version, buildType, sha256: digest })]));
  expect(readFileSync(join(bucket, 'index.html'), 'utf8')).toContain(`${name}.ova`);
  // The OVA's own OVF says what it is.
  const ovf = execFileSync('tar', ['-xOf', ova, `${name}.ovf`], { encoding: 'utf8' });
  expect(ovf).toContain(buildType);
  expect(ovf).toContain('ovf:id="96"');
  // A real importer takes it: virt-v2v verifies the manifest and reads the descriptor.
  const imported = importerReads(ova);
  expect([imported.status, imported.facts['source name'], imported.disks]).toEqual([0, name, ['\t0 [scsi]']]);
  return { ova, digest, metadata };
}

/**
 * The run attested the published OVA once, in build.yml's attest job, by the digest its published .sha256 states
 * (the attest-build-provenance stand-in checks the job's permissions and records the subject).
 */
function expectAttested(run: WorkflowRun, version: string, buildType: 'standard' | 'prewarmed', digest: string): void {
  const name = `demo-lab-${buildType}-${version}`;
  const published = readFileSync(join(bucket, 'releases', `v${version}`, buildType, `${name}.ova.sha256`), 'utf8').split(' ')[0];
  expect(published).toBe(digest);
  expect(run.attestations).toEqual([expect.objectContaining({ subjectName: `${name}.ova`, digest: `sha256:${published}` })]);
  expect(run.attestations[0]!.job).toMatch(/(^|\/)attest$/);
  expect(jobOf(run, 'attest').runsOn).toEqual(['ubuntu-latest']);
}

beforeAll(async () => {
  // The base image is cached by the hash of its inputs: built here so that the runs below time only themselves.
  await ensureDemoBase();
  work = mkdtempSync(join(tmpdir(), 'labforge-workflows-e2e-'));
  bucket = join(work, 'bucket');
  sha = execFileSync('git', ['rev-parse', 'HEAD'], { cwd: repoRoot, encoding: 'utf8' }).trim();
  api = new GitHubApiStandIn({ repositories: [REPO], tokens: { [TOKEN]: 'write' } });
  await api.start();
}, 1_200_000);

afterAll(async () => {
  await api?.stop();
  const table = Object.entries(runs)
    .map(([title, run]) => `#### ${title} (${run.seconds.toFixed(0)} s, ${run.conclusion})\n\n${formatTimings(run)}`)
    .join('\n\n');
  if (table) console.log(`workflow runs under TCG (stand-in timing):\n\n${table}`);
  if (process.env.LABFORGE_WORKFLOW_TIMES && table) writeFileSync(process.env.LABFORGE_WORKFLOW_TIMES, `${table}\n`);
  if (work) rmSync(work, { recursive: true, force: true });
});

describe('build-on-demand, standard 0.2.0 with upload', () => {
  let run: WorkflowRun;
  beforeAll(async () => {
    run = await runWorkflow(options({
      workflow: '.github/workflows/build-on-demand.yml',
      event: { name: 'workflow_dispatch', ref: 'refs/heads/main', sha, inputs: { build_type: 'standard', version: '0.2.0', reason: 'e2e: standard', upload: true } },
    }));
    runs['build-on-demand standard'] = run;
  }, 1_500_000);

  it('succeeds; the build job asked for the KVM runner the appliance names', () => {
    expectSuccess(run);
    expect(jobOf(run, 'detect').runsOn).toEqual(['ubuntu-latest']);
    expect(jobOf(run, 'build').runsOn).toEqual(KVM_LABELS);
    expect(stepOf(jobOf(run, 'build'), /Packer/).outcome).toBe('success');
    expect(stepOf(jobOf(run, 'build'), /Warm the lab/).outcome).toBe('skipped');
  });

  it('packed the OVA in the upload step, publishing it while it packed (Packer only built the disk)', () => {
    const build = jobOf(run, 'build');
    expect(stepOf(build, /Packer/).outputs.ova ?? '').toBe('');
    expect(stepOf(build, /publish it while it packs/).outcome).toBe('success');
    expect(build.summary).toContain('Published demo-lab v0.2.0 standard (packed and published at once)');
  });

  it('publishes the OVA, its checksum and metadata under releases/v0.2.0/standard, listed by the catalog and portal; attests it', async () => {
    const { digest } = await expectPublished('0.2.0', 'standard');
    expectAttested(run, '0.2.0', 'standard', digest);
  });

  it('writes the job summary with the phase table, and never logs the console password', () => {
    const summary = jobOf(run, 'build').summary;
    expect(summary).toContain('labforge build: standard 0.2.0 (success)');
    expect(summary).toMatch(/\| Packer build \| \d+(\.\d+)? s \|/);
    expect(summary).toContain('e2e: standard');
    expect(everything(run)).not.toContain(CONSOLE_PASSWORD);
    expect(everything(run)).not.toContain(TOKEN);
  });
});

describe('build-on-demand, prewarmed 0.2.0 with upload (after the standard 0.2.0)', () => {
  let run: WorkflowRun;
  beforeAll(async () => {
    run = await runWorkflow(options({
      workflow: '.github/workflows/build-on-demand.yml',
      event: { name: 'workflow_dispatch', ref: 'refs/heads/main', sha, inputs: { build_type: 'prewarmed', version: '0.2.0', reason: 'e2e: prewarmed', upload: true } },
    }));
    runs['build-on-demand prewarmed (from the published standard)'] = run;
  }, 1_500_000);

  it('succeeds without building an OS image: it starts from the published standard OVA', () => {
    expectSuccess(run);
    const build = jobOf(run, 'build');
    expect(stepOf(build, /published standard/).outcome).toBe('success');
    expect(stepOf(build, /published standard/).outputs.found).toBe('true');
    expect(stepOf(build, /Packer/).outcome).toBe('skipped');
    expect(stepOf(build, /Warm the lab/).outcome).toBe('success');
    // The warmed disk was packed by the upload step, which published the OVA while it packed.
    expect(stepOf(build, /Pack the pre-warmed OVA/).outcome).toBe('skipped');
    expect(build.summary).toContain('Published demo-lab v0.2.0 prewarmed (packed and published at once)');
  });

  it('warmed in order (init, the readiness proof, then the marker), and left no QEMU running', () => {
    const warm = stepOf(jobOf(run, 'build'), /Warm the lab/);
    const log = warm.log;
    expect(log.indexOf('build-init')).toBeGreaterThan(-1);
    expect(log.indexOf('build-init')).toBeLessThan(log.indexOf('lab ready'));
    expect(log.indexOf('lab ready')).toBeLessThan(log.indexOf('marker /etc/hedgehog-lab/build-type = prewarmed'));
    expect(Object.keys(JSON.parse(warm.outputs.timeline ?? '{}') as object)).toEqual(['overlay', 'seed', 'boot', 'ssh-up', 'init', 'ready', 'mark', 'seal', 'sbom', 'shutdown', 'flatten']);
    const pid = Number(/QEMU pid (\d+)/.exec(log)?.[1]);
    expect(pid).toBeGreaterThan(0);
    expect(spawnSync('kill', ['-0', String(pid)]).status).not.toBe(0);
  });

  it('publishes the pre-warmed OVA, recording the standard OVA it came from', async () => {
    const standard = await sha256(join(bucket, 'releases', 'v0.2.0', 'standard', 'demo-lab-standard-0.2.0.ova'));
    const { metadata } = await expectPublished('0.2.0', 'prewarmed');
    expect(JSON.stringify(metadata)).toContain(standard);
    expect(jobOf(run, 'build').summary).toMatch(/\| Lab warm-up \| \d+(\.\d+)? s \|/);
    expect(jobOf(run, 'build').summary).toContain('| Standard image | the published `file://');
    expect(everything(run)).not.toContain(CONSOLE_PASSWORD);
  });
});

describe('release.yml for the pushed tags v0.3.0 and v0.3.0-prewarmed', () => {
  const push = (tag: string) =>
    runWorkflow(options({ workflow: '.github/workflows/release.yml', event: { name: 'push', ref: `refs/tags/${tag}`, sha, payload: { ref: `refs/tags/${tag}`, created: true } } }));

  it('v0.3.0: builds, publishes and creates the GitHub release with the checksum and metadata attached', async () => {
    const run = await push('v0.3.0');
    runs['release v0.3.0'] = run;
    expectSuccess(run);
    const { digest } = await expectPublished('0.3.0', 'standard');
    const release = api.releasesOf(REPO).find((r) => r.tag_name === 'v0.3.0');
    expect(release).toBeDefined();
    expect(release!.draft).toBe(false);
    expect(release!.assets.map((a) => a.name).sort()).toEqual(['demo-lab-standard-0.3.0.cdx.json', 'demo-lab-standard-0.3.0.metadata.json', 'demo-lab-standard-0.3.0.ova.sha256']);
    expect(release!.body).toMatch(/- SBOM: `demo-lab-standard-0\.3\.0\.cdx\.json` \(CycloneDX 1\.6, \d+ components/);
    expect(release!.body).toContain(digest);
    expect(jobOf(run, 'release').runsOn).toEqual(['ubuntu-latest']);
    // The provenance of the published OVA, attested by its digest, and the notes say how to check both.
    expectAttested(run, '0.3.0', 'standard', digest);
    expect(release!.body).toContain('labforge verify demo-lab-standard-0.3.0.ova');
    expect(release!.body).toContain(`gh attestation verify demo-lab-standard-0.3.0.ova --repo ${REPO}`);
  }, 1_500_000);

  it('v0.3.0-prewarmed: builds no OS image (starts from the v0.3.0 standard OVA), publishes and releases', async () => {
    const run = await push('v0.3.0-prewarmed');
    runs['release v0.3.0-prewarmed'] = run;
    expectSuccess(run);
    expect(stepOf(jobOf(run, 'build'), /Packer/).outcome).toBe('skipped');
    const standard = await sha256(join(bucket, 'releases', 'v0.3.0', 'standard', 'demo-lab-standard-0.3.0.ova'));
    const { metadata, digest } = await expectPublished('0.3.0', 'prewarmed');
    expect(JSON.stringify(metadata)).toContain(standard);
    expectAttested(run, '0.3.0', 'prewarmed', digest);
    const release = api.releasesOf(REPO).find((r) => r.tag_name === 'v0.3.0-prewarmed');
    expect(release?.assets.map((a) => a.name).sort()).toEqual(['demo-lab-prewarmed-0.3.0.cdx.json', 'demo-lab-prewarmed-0.3.0.metadata.json', 'demo-lab-prewarmed-0.3.0.ova.sha256']);
  }, 1_500_000);

  it('a moving v1 tag starts no build', async () => {
    const run = await push('v1');
    expect(run.triggered).toBe(false);
    expect(run.jobs).toEqual([]);
  });
});

describe('build-on-demand, standard 0.5.0 without upload', () => {
  it('Packer packs the OVA itself, the job checks it, and nothing is published', async () => {
    const run = await runWorkflow(options({
      workflow: '.github/workflows/build-on-demand.yml',
      event: { name: 'workflow_dispatch', ref: 'refs/heads/main', sha, inputs: { build_type: 'standard', version: '0.5.0', upload: false } },
    }));
    runs['build-on-demand standard, no upload'] = run;
    expectSuccess(run);
    const build = jobOf(run, 'build');
    const packed = stepOf(build, /Packer/).outputs.ova ?? '';
    expect(packed).toMatch(/\/demo-lab-standard-0\.5\.0\.ova$/);
    expect(stepOf(build, /publish it while it packs/).outcome).toBe('skipped');
    expect(stepOf(build, /Pack the pre-warmed OVA/).outcome).toBe('skipped');
    const located = stepOf(build, /Locate the OVA/);
    expect([located.outcome, located.outputs.path]).toEqual(['success', packed]);
    expect(located.log).toContain('demo-lab-standard-0.5.0.ova: OK');
    expect(existsSync(join(bucket, 'releases', 'v0.5.0'))).toBe(false);
  }, 1_500_000);
});

describe('failure paths', () => {
  it('a Packer build that fails mid-way fails the job, keeps the build log and publishes nothing', async () => {
    // The commit under test with one template value made wrong: the base disk's checksum, which Packer checks
    // after it has started the build (step download), not in validation.
    const scratch = join(work, 'scratch-repo');
    execFileSync('git', ['clone', '-q', repoRoot, scratch]);
    execFileSync('git', ['checkout', '-q', sha], { cwd: scratch });
    const template = join(scratch, 'packer', 'demo-lab', 'demo-lab.pkr.hcl');
    writeFileSync(template, readFileSync(template, 'utf8').replace('iso_checksum     = "none"', `iso_checksum     = "sha256:${'0'.repeat(64)}"`));
    execFileSync('git', ['-c', 'user.name=e2e', '-c', 'user.email=e2e@example.invalid', 'commit', '-q', '-am', 'e2e: a wrong checksum'], { cwd: scratch });
    const broken = execFileSync('git', ['rev-parse', 'HEAD'], { cwd: scratch, encoding: 'utf8' }).trim();
    const run = await runWorkflow(options({
      repoDir: scratch,
      repositories: { [REPO]: scratch },
      workflow: '.github/workflows/build-on-demand.yml',
      event: { name: 'workflow_dispatch', ref: 'refs/heads/main', sha: broken, inputs: { build_type: 'standard', version: '0.4.0', upload: true } },
    }));
    runs['build-on-demand with a failing Packer build'] = run;
    expect(run.conclusion).toBe('failure');
    const build = jobOf(run, 'build');
    expect(stepOf(build, /Packer/).outcome).toBe('failure');
    expect(stepOf(build, /publish it while it packs/).outcome).toBe('skipped');
    expect(stepOf(build, /Keep the Packer log/).outcome).toBe('success');
    const logDir = join(run.runDir, 'artifacts', 'demo-lab-standard-0.4.0-packer-log');
    const logs = readdirSync(logDir, { recursive: true, encoding: 'utf8' });
    expect(logs.length).toBeGreaterThan(0);
    expect(logs.map((f) => readFileSync(join(logDir, f), 'utf8')).join('\n')).toMatch(/checksum/i);
    expect(existsSync(join(bucket, 'releases', 'v0.4.0'))).toBe(false);
    expect(JSON.stringify(JSON.parse(readFileSync(join(bucket, 'index.json'), 'utf8')))).not.toContain('0.4.0');
    // Nothing published, nothing attested: the attest job needs a successful build.
    expect(jobOf(run, 'attest').result).toBe('skipped');
    expect(run.attestations).toEqual([]);
  }, 900_000);

  it('a run cancelled mid-warm stops QEMU, runs the post steps and publishes nothing', async () => {
    const controller = new AbortController();
    const opts = options({
      workflow: '.github/workflows/build-on-demand.yml',
      event: { name: 'workflow_dispatch', ref: 'refs/heads/main', sha, inputs: { build_type: 'prewarmed', version: '0.2.0', upload: false } },
      signal: controller.signal,
    });
    const qemuOfRun = () => spawnSync('pgrep', ['-f', `qemu-system.*${opts.runDir}`]).status === 0;
    const watcher = (async () => {
      // Cancel once the warm's QEMU has been up for a few seconds (as a user pressing "Cancel workflow").
      for (let i = 0; i < 1800 && !qemuOfRun(); i++) await new Promise((r) => setTimeout(r, 500));
      await new Promise((r) => setTimeout(r, 5_000));
      controller.abort();
    })();
    const run = await runWorkflow(opts);
    await watcher;
    runs['build-on-demand prewarmed, cancelled mid-warm'] = run;
    expect(run.conclusion).toBe('cancelled');
    const build = jobOf(run, 'build');
    expect(stepOf(build, /Warm the lab/).outcome).not.toBe('success');
    expect(stepOf(build, /Clean up the work directory/).outcome).toBe('success');
    expect(build.posts.length).toBeGreaterThan(0);
    expect(build.posts.every((p) => p.code === 0)).toBe(true);
    expect(qemuOfRun()).toBe(false);
    // vlab-warm itself stopped QEMU and removed its overlay and seed (before the job's clean-up step ran).
    expect(stepOf(build, /Warm the lab/).log).toMatch(/warm cancelled during [a-z-]+; QEMU stopped and the overlay removed/);
    expect(readdirSync(opts.runDir!, { recursive: true, encoding: 'utf8' }).filter((f) => /overlay\.qcow2$|(^|\/)labforge-seed-[^/]*$/.test(f))).toEqual([]);
  }, 900_000);
});

/** The first partition of a disk image file (dos label), as a file debugfs reads. */
function rootPartition(vmdk: string, dir: string): string {
  execFileSync('qemu-img', ['convert', '-O', 'raw', vmdk, join(dir, 'disk.raw')]);
  const table = JSON.parse(execFileSync('sfdisk', ['--json', join(dir, 'disk.raw')], { encoding: 'utf8' })) as { partitiontable: { partitions: { start: number }[] } };
  const start = table.partitiontable.partitions[0]!.start;
  execFileSync('dd', [`if=${join(dir, 'disk.raw')}`, `of=${join(dir, 'root.ext4')}`, 'bs=1M', 'iflag=skip_bytes', `skip=${start * 512}`, 'conv=sparse', 'status=none']);
  rmSync(join(dir, 'disk.raw'));
  return join(dir, 'root.ext4');
}

const READY = /hedgehog-lab: ready build-type=(\S+) mode=(\S+)/;

/** Boots a published OVA's disk as a hypervisor boots an imported disk (firmware → its own GRUB), with an attendee's NoCloud seed. */
async function bootPublished(buildType: 'standard' | 'prewarmed', dir: string) {
  const name = `demo-lab-${buildType}-0.2.0`;
  execFileSync('tar', ['-xf', join(bucket, 'releases', 'v0.2.0', buildType, `${name}.ova`), `${name}-disk1.vmdk`], { cwd: dir });
  const disk = join(dir, 'disk.qcow2');
  execFileSync('qemu-img', ['convert', '-O', 'qcow2', join(dir, `${name}-disk1.vmdk`), disk]);
  const seed = await createSeed({ user: 'attendee', parentDir: dir, keyComment: 'attendee' });
  const vm: VmHandle = await startVm({ image: disk, snapshot: true, accelerator: kvmAvailable() ? 'kvm' : 'tcg', memoryMiB: 1024, cpus: 2, serialLog: join(dir, 'serial.log'), extraArgs: seedQemuArgs(seed) });
  const attendee = () => connectSsh({ host: '127.0.0.1', port: vm.sshPort, username: 'attendee', privateKey: seed.privateKey, timeoutMs: 300_000, refusedKeyAttempts: Number.POSITIVE_INFINITY });
  return { vm, seed, attendee, vmdk: join(dir, `${name}-disk1.vmdk`), stop: async () => { await vm.kill(); await removeSeed(seed); } };
}

describe('the published OVAs, booted as a hypervisor boots them', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(work, 'boot-'));
  });

  it('standard: the first boot initializes the lab and reports ready; the readiness probe is real', async () => {
    const boot = await bootPublished('standard', mkdtempSync(join(dir, 'standard-')));
    try {
      const ready = await boot.vm.waitForSerial(READY, 600_000);
      expect([ready[1], ready[2]]).toEqual(['standard', 'init']);
      expect(boot.vm.serialText()).toContain('[test-lab init] init done');
      const session = await boot.attendee();
      try {
        const status = JSON.parse((await session.exec('sudo -n hedgehog-lab status --json')).stdout) as { buildType: string; state: string; driverStatus: { ready: boolean; switches: number; initCount: number } };
        expect(status).toMatchObject({ buildType: 'standard', state: 'ready', driverStatus: { ready: true, switches: 8, initCount: 1 } });
        await session.exec('sudo -n systemctl stop test-lab.service');
        const probe = await session.exec('sudo -n hedgehog-lab ready');
        expect([probe.code, probe.stdout.trim()]).toEqual([4, 'not ready']);
      } finally {
        session.close();
      }
    } finally {
      await boot.stop();
    }
  }, 900_000);

  it('prewarmed: sealed on its disk; its first boot only resumes, the attendee and the console user get in', async () => {
    const boot = await bootPublished('prewarmed', mkdtempSync(join(dir, 'prewarmed-')));
    try {
      // Read from its disk while it boots from a snapshot: no key, no host key, no machine-id, no cloud-init state.
      const root = rootPartition(boot.vmdk, mkdtempSync(join(dir, 'disk-')));
      const debugfs = (request: string) => spawnSync('debugfs', ['-R', request, root], { encoding: 'utf8' }).stdout;
      expect(debugfs('cat /etc/hedgehog-lab/build-type')).toBe('prewarmed\n');
      for (const home of ['/root', '/home/labforge', '/home/lab']) expect(debugfs(`ls -l ${home}/.ssh`)).not.toMatch(/authorized_keys/);
      expect(debugfs('ls -l /etc/ssh')).not.toMatch(/ssh_host_\w+_key/);
      expect(debugfs('stat /etc/machine-id')).toMatch(/Size: 0\b/);
      expect(debugfs('ls /var/lib/cloud')).not.toMatch(/instances?\b|seed|sem\b/);
      expect(debugfs('cat /etc/shadow')).toMatch(/^lab:\$6\$[^:]+:/m);
      expect(spawnSync('grep', ['-c', CONSOLE_PASSWORD, root], { encoding: 'utf8' }).stdout.trim()).toBe('0');

      const ready = await boot.vm.waitForSerial(READY, 600_000);
      expect([ready[1], ready[2]]).toEqual(['prewarmed', 'resume']);
      expect(boot.vm.serialText()).not.toMatch(/\[test-lab init\]/);
      const session = await boot.attendee();
      try {
        // Initialized once, at build time (by the warm VM's boot service, whose lock build-init waited for), and
        // only resumed since: by the warm's build-init, then by this first boot.
        const status = JSON.parse((await session.exec('sudo -n hedgehog-lab status --json')).stdout) as { initialized: { mode: string }; lastRun: { mode: string }; driverStatus: { initCount: number; resumeCount: number } };
        expect(status).toMatchObject({ lastRun: { mode: 'resume' }, driverStatus: { initCount: 1 } });
        expect(['init', 'build-init']).toContain(status.initialized.mode);
        expect(status.driverStatus.resumeCount).toBeGreaterThanOrEqual(1);
        expect((await session.exec('cat /etc/machine-id')).stdout.trim()).toMatch(/^[0-9a-f]{32}$/);
        const manifest = JSON.parse((await session.exec('cat /var/lib/hedgehog-lab/warm-manifest.json')).stdout) as Record<string, unknown>;
        expect(manifest).toMatchObject({ buildType: 'prewarmed', labVersion: '0.2.0', mode: 'boot', readiness: { exitCode: 0 } });
        // A second build-init is idempotent: the lab is initialized, so it only resumes.
        const again = await session.exec('sudo -n hedgehog-lab build-init');
        expect([again.code, /already initialized/.test(again.stderr)]).toEqual([0, true]);
        // The login user logs in on the console (tty1) with the build's console password, typed on the keyboard.
        const getty = await session.exec('for i in $(seq 60); do systemctl is-active -q getty@tty1 && exit 0; sleep 1; done; exit 1');
        expect(getty.code).toBe(0);
        await new Promise((r) => setTimeout(r, 3_000));
        await typeOnConsole(boot.vm.qmpSocket, 'lab\n');
        await new Promise((r) => setTimeout(r, 5_000));
        await typeOnConsole(boot.vm.qmpSocket, `${CONSOLE_PASSWORD}\n`);
        const who = await session.exec("for i in $(seq 90); do who | grep -Eq '^lab +tty1' && { who; exit 0; }; sleep 1; done; who; exit 1");
        expect(who.stdout).toMatch(/^lab +tty1/m);
      } finally {
        session.close();
      }
      // Over SSH the console password is refused: password logins stay off.
      const overSsh = await diagnoseSsh({ host: '127.0.0.1', port: boot.vm.sshPort, username: 'lab', password: CONSOLE_PASSWORD, timeoutSeconds: 20, waitSeconds: 0, command: 'true', checkSudo: false });
      expect(overSsh.cause).toBe('password-auth-disabled');
    } finally {
      await boot.stop();
    }
  }, 900_000);
});
