/**
 * The `actions` job of .github/workflows/self-test.yml, run here with the workflow runner stand-in
 * (test/support/workflow-runner: GitHub's own workflow parser and expression evaluator, actions/checkout as
 * a local clone): the committed bundles with the workflow's inputs and action.yml's defaults, the checks in
 * run: scripts, and the final step that asserts every invalid call failed. The repository is run as it is on
 * disk (a snapshot commit of the working tree), so the self-test that CI runs on GitHub is known to pass
 * before it is pushed.
 */
import { describe, expect, it } from '@jest/globals';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoRoot } from '../support/run-action.js';
import { failureReport, runWorkflow, snapshotWorkingTree } from '../support/workflow-runner/index.js';

describe('the self-test workflow, job "actions"', () => {
  it('passes: valid calls succeed with the expected outputs, invalid calls fail', async () => {
    const runDir = mkdtempSync(join(tmpdir(), 'labforge-self-test-run-'));
    const run = await runWorkflow({
      workflow: '.github/workflows/self-test.yml',
      repoDir: repoRoot,
      event: { name: 'workflow_dispatch', ref: 'refs/heads/main', sha: snapshotWorkingTree(repoRoot) },
      runners: [['ubuntu-latest']],
      jobs: ['actions'],
      runDir,
    }).finally(() => rmSync(runDir, { recursive: true, force: true }));
    const job = run.jobs.find((j) => j.id === 'actions');
    expect(job?.runsOn).toEqual(['ubuntu-latest']);
    const steps = job?.steps ?? [];
    const failedUnexpectedly = steps.filter((s) => s.outcome === 'failure' && !/must fail/.test(s.name)).map((s) => `${s.name}:\n${s.log.slice(-2000)}`);
    expect(failedUnexpectedly).toEqual([]);
    // Every "must fail" call failed, and for the reason it is there: its ::error annotation names that input.
    const mustFail = steps
      .filter((s) => /must fail/.test(s.name))
      .map((s) => {
        const error = s.annotations.find((a) => a.level === 'error' && a.title !== undefined) ?? s.annotations.find((a) => a.level === 'error');
        return `${s.outcome}: ${s.name}: ${error ? `[${error.title ?? ''}] ${error.message}` : 'no error annotation'}`;
      });
    expect(mustFail).toEqual([
      expect.stringMatching(/^failure: detect-build-type: invalid build-type .*\] build-type: 'lukewarm'/),
      expect.stringMatching(/^failure: detect-build-type: invalid version .*\] version: 'one-point-four'/),
      expect.stringMatching(/^failure: ssh-diagnose: invalid port .*\] port: 70000/),
      expect.stringMatching(/^failure: upload-artifact: the same release again .*already exists/),
      expect.stringMatching(/^failure: upload-artifact: invalid destination .*\] destination: 'ftp:/),
      expect.stringMatching(/^failure: packer-build: invalid accelerator .*\] accelerator: 'hyperv'/),
      expect.stringMatching(/^failure: packer-build: missing template .*\] template: .*does not exist/),
      expect.stringMatching(/^failure: vlab-warm: image that does not exist .*\] image: .*does not exist/),
      expect.stringMatching(/^failure: vlab-warm: invalid accelerator .*\] accelerator: 'hyperv'/),
    ]);
    expect(steps.find((s) => s.name === 'Every invalid call failed')?.outcome).toBe('success');
    if (run.conclusion !== 'success') throw new Error(`the self-test concluded ${run.conclusion}:\n${failureReport(run)}`);
    expect(job?.posts.filter((p) => p.code !== 0)).toEqual([]);
  }, 300_000);
});
