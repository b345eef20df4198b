/**
 * The `actions` job of .github/workflows/self-test.yml, run here with a runner stand-in
 * (test/support/workflow-job-runner.ts): the committed bundles with the workflow's inputs and action.yml's
 * defaults, the checks in run: scripts, and the final step that asserts every invalid call failed. So the
 * self-test that CI runs on GitHub is known to pass before it is pushed.
 */
import { describe, expect, it } from '@jest/globals';
import { runWorkflowJob } from '../support/workflow-job-runner.js';

describe('the self-test workflow, job "actions"', () => {
  it('passes: valid calls succeed with the expected outputs, invalid calls fail', async () => {
    const run = await runWorkflowJob('.github/workflows/self-test.yml', 'actions');
    const table = run.steps.map((s) => `${s.outcome.padEnd(7)} ${s.name}`);
    const failedUnexpectedly = run.steps.filter((s) => s.outcome === 'failure' && !/must fail/.test(s.name)).map((s) => `${s.name}:\n${s.log.slice(-2000)}`);
    expect(failedUnexpectedly).toEqual([]);
    // Every "must fail" call failed, and for the reason it is there: its ::error names that input.
    const mustFail = run.steps.filter((s) => /must fail/.test(s.name)).map((s) => `${s.outcome}: ${s.name}: ${s.log.split('\n').find((l) => l.startsWith('::error')) ?? 'no ::error line'}`);
    expect(mustFail).toEqual([
      expect.stringMatching(/^failure: detect-build-type: invalid build-type .*::build-type: 'lukewarm'/),
      expect.stringMatching(/^failure: detect-build-type: invalid version .*::version: 'one-point-four'/),
      expect.stringMatching(/^failure: ssh-diagnose: invalid port .*::port: 70000/),
      expect.stringMatching(/^failure: upload-artifact: the same release again .*already exists/),
      expect.stringMatching(/^failure: upload-artifact: invalid destination .*::destination: 'ftp:/),
      expect.stringMatching(/^failure: packer-build: invalid accelerator .*::accelerator: 'hyperv'/),
      expect.stringMatching(/^failure: packer-build: missing template .*::template: .*does not exist/),
      expect.stringMatching(/^failure: vlab-warm: image that does not exist .*::image: .*does not exist/),
      expect.stringMatching(/^failure: vlab-warm: invalid accelerator .*::accelerator: 'hyperv'/),
    ]);
    expect(table).toContain('success Every invalid call failed');
    expect(run.success).toBe(true);
    expect(run.posts.filter((p) => p.code !== 0)).toEqual([]);
  }, 300_000);
});
