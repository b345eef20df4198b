/**
 * The workflow templates users copy call labforge's build.yml at a pinned commit (`…/build.yml@<SHA> # v1`,
 * `labforge_ref: <SHA> # v1`). GitHub validates such a call against the build.yml OF THAT COMMIT: an input the
 * template passes that the pinned build.yml does not declare fails every run ("Invalid input, … is not defined
 * in the referenced workflow"). So each template is parsed here as GitHub parses it (@actions/workflow-parser,
 * through the runner stand-in's loader), with the reusable workflow read from this repository at the pinned
 * commit. A build.yml interface change therefore fails here until the templates are re-pinned
 * (`node bin/labforge pin --ref v1 …`, docs/RELEASE_PROCESS.md).
 */
import { describe, expect, it } from '@jest/globals';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoRoot } from '../support/run-action.js';
import { loadWorkflow } from '../support/workflow-runner/parse.js';
import { Repositories, resolveCommit, snapshotWorkingTree } from '../support/workflow-runner/repos.js';

const templates = ['workflows-templates/build-on-demand.yml', 'workflows-templates/release.yml'];

describe('the templates’ pinned build.yml accepts what they pass', () => {
  const snapshot = snapshotWorkingTree(repoRoot);
  const repos = new Repositories({ 'OWNER/labforge': repoRoot, 'workshop/site': repoRoot });

  it.each(templates)('%s', async (path) => {
    const pin = /build\.yml@([0-9a-f]{40}) # v1/.exec(readFileSync(join(repoRoot, path), 'utf8'))?.[1];
    expect(pin).toBeDefined();
    if (!resolveCommit(repoRoot, `${pin}^{commit}`)) throw new Error(`${path} pins ${pin}, which this clone does not have (a shallow clone? the pin must name a commit of this repository)`);
    await expect(loadWorkflow({ repository: 'workshop/site', dir: repoRoot, sha: snapshot, path }, repos)).resolves.toBeDefined();
  });

  it('fails for a pin whose build.yml lacks an input the template passes (the check can fail)', async () => {
    // cb19668 is the commit before build.yml took runs_on: the template's `runs_on:` must be refused there.
    const old = resolveCommit(repoRoot, 'cb196686645237a0e6d26ab9b8362e2e28dfa945');
    if (!old) throw new Error('the history of this repository is needed (commit cb19668)');
    const site = mkdtempSync(join(tmpdir(), 'labforge-pin-site-'));
    try {
      const text = readFileSync(join(repoRoot, templates[0]!), 'utf8').replace(/build\.yml@[0-9a-f]{40}/, `build.yml@${old}`);
      mkdirSync(join(site, '.github', 'workflows'), { recursive: true });
      writeFileSync(join(site, '.github', 'workflows', 'build-on-demand.yml'), text);
      const git = (args: string[]) => execFileSync('git', ['-c', 'user.name=t', '-c', 'user.email=t@example.invalid', ...args], { cwd: site });
      git(['init', '-q']);
      git(['add', '.']);
      git(['commit', '-qm', 'site']);
      const sha = resolveCommit(site, 'HEAD')!;
      await expect(loadWorkflow({ repository: 'workshop/site', dir: site, sha, path: '.github/workflows/build-on-demand.yml' }, repos)).rejects.toThrow(/runs_on/);
    } finally {
      rmSync(site, { recursive: true, force: true });
    }
  });
});
