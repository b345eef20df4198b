/** Least privilege, no fork PRs on self-hosted runners, pinned actions, no expressions in scripts. */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { checkWorkflowSecurity } from '../support/workflow-security.js';
import { readYamlFile, workflowFiles } from '../support/workflow-files.js';

describe('every workflow follows the security rules', () => {
  it.each(workflowFiles().map((f) => [f.path, f] as const))('%s', (_path, file) => {
    expect(checkWorkflowSecurity(file)).toEqual([]);
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
      'bad.yml:7: jobs.build has id-token: write but does not log in to Google Cloud with Workload Identity Federation',
      'bad.yml:7: jobs.build has packages: write, which no labforge job needs',
      'bad.yml:5: jobs.build may run on a self-hosted runner but its if: lacks !github.event.pull_request.head.repo.fork (a fork\'s pull request must never reach our machines)',
      'bad.yml:11: jobs.build.steps[0] "actions/checkout@v4" uses actions/checkout@v4: pin third-party actions to a full commit SHA (owner/repo@<40 hex> # vX.Y.Z)',
      'bad.yml:11: jobs.build.steps[0] "actions/checkout@v4" checks out with the token left in .git/config (set persist-credentials: false)',
      'bad.yml:12: jobs.build.steps[1] "actions/setup-node@49933ea5288caeca8642d1e84afbd3f7d6820020" uses actions/setup-node@49933ea5288caeca8642d1e84afbd3f7d6820020 without the version in a comment (add # vX.Y.Z)',
      'bad.yml:13: jobs.build.steps[2] "echo "${{ secrets.TOKEN }}"" has a ${{ }} expression inside run:; pass the value through env: and use "$NAME"',
      'bad.yml:15: jobs.lint declares no permissions (declare the least it needs, e.g. contents: read)',
    ]);
  });
});
