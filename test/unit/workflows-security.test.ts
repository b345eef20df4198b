/**
 * Least privilege, no fork PRs on self-hosted runners, pinned actions (labforge's own too), no expressions in
 * scripts, no install scripts where a writing token is, no sudo on self-hosted runners.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { checkWorkflowSecurity, npmInstalls } from '../support/workflow-security.js';
import { jobsOf, readYamlFile, workflowFiles } from '../support/workflow-files.js';

describe('every workflow follows the security rules', () => {
  it.each(workflowFiles().map((f) => [f.path, f] as const))('%s', (_path, file) => {
    expect(checkWorkflowSecurity(file)).toEqual([]);
  });

  it('the jobs that hold id-token: write or contents: write install nothing: they run the committed bundles', () => {
    const privileged = workflowFiles().flatMap((f) =>
      jobsOf(f)
        .filter(([, job]) => ['id-token', 'contents'].some((p) => (job['permissions'] as Record<string, string> | undefined)?.[p] === 'write') && job.steps !== undefined)
        .map(([id, job]) => ({ where: `${f.path} ${id}`, runs: (job.steps ?? []).map((s) => (typeof s.run === 'string' ? s.run : '')).join('\n') })),
    );
    // Not vacuous: the build and release jobs of both copies of build.yml are among them, and run labforge's CLI;
    // the attest job runs no labforge code at all (it checks nothing out).
    expect(privileged.map((p) => p.where)).toEqual(expect.arrayContaining(['.github/workflows/build.yml build', '.github/workflows/build.yml release', 'workflows-templates/build.yml build', 'workflows-templates/build.yml release', '.github/workflows/build.yml attest', 'workflows-templates/build.yml attest']));
    for (const p of privileged.filter((j) => j.where.includes('build.yml') && !j.where.endsWith(' attest'))) expect(p.runs).toContain('node .labforge/bin/labforge ');
    for (const p of privileged.filter((j) => j.where.endsWith(' attest'))) expect(p.runs).not.toMatch(/bin\/labforge\b|\.labforge\//);
    for (const f of workflowFiles().filter((w) => w.path.endsWith('/build.yml'))) {
      const attest = jobsOf(f).find(([id]) => id === 'attest')![1];
      expect((attest.steps ?? []).map((s) => String(s.uses ?? 'run').replace(/@.*/, ''))).toEqual(['actions/download-artifact', 'run', 'actions/attest-build-provenance']);
      expect(attest['permissions']).toEqual({ 'id-token': 'write', attestations: 'write' });
    }
    expect(privileged.flatMap((p) => npmInstalls(p.runs).map((cmd) => `${p.where}: ${cmd}`))).toEqual([]);
  });

  it('the self-hosted jobs run no sudo (the rule is not vacuous: they exist)', () => {
    const selfHosted = workflowFiles().flatMap((f) => jobsOf(f).filter(([, job]) => job['runs-on'] !== undefined && !/^(ubuntu|windows|macos)-/.test(String(job['runs-on']))).map(([id]) => `${f.path} ${id}`));
    expect(selfHosted).toEqual(expect.arrayContaining(['.github/workflows/self-test.yml actions-on-kvm', '.github/workflows/build.yml build', 'workflows-templates/build.yml build']));
  });
});

describe('the security check itself', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'labforge-wf-security-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('names every violation with its line', () => {
    const path = join(dir, 'bad.yml');
    writeFileSync(
      path,
      `on: pull_request
permissions: write-all
jobs:
  build:
    runs-on: [self-hosted, kvm]
    permissions:
      contents: write
      id-token: write
      packages: write
    steps:
      - uses: actions/checkout@v4
      - uses: actions/setup-node@49933ea5288caeca8642d1e84afbd3f7d6820020
      - run: echo "\${{ secrets.TOKEN }}"
  lint:
    runs-on: ubuntu-latest
    steps:
      - run: true
`,
    );
    const problems = checkWorkflowSecurity(readYamlFile(path)).map((p) => p.replace(/^[^:]*bad\.yml:/, 'bad.yml:'));
    expect(problems).toEqual([
      'bad.yml:2: the top level must grant nothing (permissions: {}); grant per job',
      'bad.yml:7: jobs.build has contents: write but writes no GitHub release (use contents: read)',
      'bad.yml:7: jobs.build has id-token: write but neither logs in to Google Cloud with Workload Identity Federation nor attests a build',
      'bad.yml:7: jobs.build has packages: write, which no labforge job needs',
      'bad.yml:5: jobs.build may run on a self-hosted runner but its if: lacks !github.event.pull_request.head.repo.fork (a fork\'s pull request must never reach our machines)',
      'bad.yml:11: jobs.build.steps[0] "actions/checkout@v4" uses actions/checkout@v4: pin third-party actions to a full commit SHA (owner/repo@<40 hex> # vX.Y.Z)',
      'bad.yml:11: jobs.build.steps[0] "actions/checkout@v4" checks out with the token left in .git/config (set persist-credentials: false)',
      'bad.yml:12: jobs.build.steps[1] "actions/setup-node@49933ea5288caeca8642d1e84afbd3f7d6820020" uses actions/setup-node@49933ea5288caeca8642d1e84afbd3f7d6820020 without the version in a comment (add # vX.Y.Z)',
      'bad.yml:13: jobs.build.steps[2] "echo "${{ secrets.TOKEN }}"" has a ${{ }} expression inside run:; pass the value through env: and use "$NAME"',
      'bad.yml:15: jobs.lint declares no permissions (declare the least it needs, e.g. contents: read)',
    ]);
  });

  it('pins labforge like any other repository, installs without scripts where a token writes, and refuses sudo on self-hosted runners', () => {
    const path = join(dir, 'pins.yml');
    const sha = '0123456789abcdef0123456789abcdef01234567';
    writeFileSync(
      path,
      `on: push
permissions: {}
jobs:
  floating:
    permissions:
      contents: read
      id-token: write
    uses: OWNER/labforge/.github/workflows/build.yml@v1
    with:
      labforge_ref: v1
  split:
    permissions:
      contents: read
      id-token: write
    uses: OWNER/labforge/.github/workflows/build.yml@${sha} # v1
    with:
      labforge_ref: fedcba9876543210fedcba9876543210fedcba98
  build:
    if: \${{ !github.event.pull_request.head.repo.fork }}
    runs-on: [self-hosted, kvm]
    permissions:
      contents: read
      id-token: write
    steps:
      - uses: google-github-actions/auth@ba79af03959ebeac9769e648f473a284504d9193 # v2.1.10
      - run: |
          npm ci --no-audit
          npm install --ignore-scripts
          npm ci \\
            --ignore-scripts
          npm run build
          sudo apt-get install -y qemu-utils
      - run: echo "pseudo sudoers" && (sudo -n true)
  lint:
    runs-on: ubuntu-latest
    permissions:
      contents: read
    steps:
      - run: npm ci && sudo true
`,
    );
    const problems = checkWorkflowSecurity(readYamlFile(path)).map((p) => p.replace(/^[^:]*pins\.yml:/, 'pins.yml:'));
    expect(problems).toEqual([
      'pins.yml:8: jobs.floating uses OWNER/labforge/.github/workflows/build.yml@v1: pin third-party actions to a full commit SHA (owner/repo@<40 hex> # vX.Y.Z)',
      "pins.yml:10: jobs.floating checks out labforge at 'v1'; use a full commit SHA (labforge pin) or ${{ github.sha }}",
      `pins.yml:17: jobs.split checks out labforge at fedcba9876543210fedcba9876543210fedcba98 but calls its workflow at ${sha}; pin both to the same commit (labforge pin)`,
      "pins.yml:26: jobs.build.steps[1] \"npm ci --no-audit\" runs 'npm ci --no-audit' in a job with a write permission; add --ignore-scripts (no dependency's install script may see the token)",
      'pins.yml:26: jobs.build.steps[1] "npm ci --no-audit" uses sudo in a job that may run on a self-hosted runner, whose user has none (do it without root, or in runner-setup)',
      'pins.yml:33: jobs.build.steps[2] "echo "pseudo sudoers" && (sudo -n true)" uses sudo in a job that may run on a self-hosted runner, whose user has none (do it without root, or in runner-setup)',
    ]);
  });

  it('allows attestations: write and id-token: write to a job that attests, and to no other', () => {
    const path = join(dir, 'attest.yml');
    writeFileSync(
      path,
      `on: push
permissions: {}
jobs:
  attest:
    runs-on: ubuntu-latest
    permissions:
      id-token: write
      attestations: write
    steps:
      - uses: actions/attest-build-provenance@a2bbfa25375fe432b6a289bc6b6cd05ecd0c4c32 # v4.1.0
        with:
          subject-path: x.ova
  pretender:
    runs-on: ubuntu-latest
    permissions:
      id-token: write
      attestations: write
    steps:
      - run: true
`,
    );
    const problems = checkWorkflowSecurity(readYamlFile(path)).map((p) => p.replace(/^[^:]*attest\.yml:/, 'attest.yml:'));
    expect(problems).toEqual([
      'attest.yml:16: jobs.pretender has id-token: write but neither logs in to Google Cloud with Workload Identity Federation nor attests a build',
      'attest.yml:16: jobs.pretender has attestations: write but attests nothing (actions/attest-build-provenance)',
    ]);
  });

  it('finds the npm install commands of a script', () => {
    expect(npmInstalls('npm ci --no-audit\nnpm run build && npm i -g x; npm info y\nnpm install \\\n  --ignore-scripts # comment')).toEqual(['npm ci --no-audit', 'npm i -g x', 'npm install    --ignore-scripts']);
  });
});
