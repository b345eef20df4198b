/**
 * The workflows and templates agree with the actions and the reusable workflow they call (inputs declared
 * and required ones given, outputs read only where produced), and this repository's copies of the
 * templates differ from them only in how they refer to labforge itself.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoRoot } from '../support/run-action.js';
import { checkTemplatePins, checkWorkflowConsistency, repoCopyOfTemplate, runScriptOutputs, templatePins } from '../support/workflow-consistency.js';
import { TEMPLATES, readYamlFile, workflowFiles } from '../support/workflow-files.js';

describe('every workflow agrees with what it calls', () => {
  const files = workflowFiles();

  it('finds the workflows and templates', () => {
    const paths = files.map((f) => f.path);
    for (const t of TEMPLATES) {
      expect(paths).toContain(`workflows-templates/${t}`);
      expect(paths).toContain(`.github/workflows/${t}`);
    }
    expect(paths).toEqual(expect.arrayContaining(['.github/workflows/ci.yml', '.github/workflows/self-test.yml']));
  });

  it.each(files.map((f) => [f.path, f] as const))('%s', (_path, file) => {
    expect(checkWorkflowConsistency(file)).toEqual([]);
  });
});

describe("this repository's workflows are the templates", () => {
  it.each(TEMPLATES)('.github/workflows/%s is its template with labforge referring to itself', (name) => {
    const template = readFileSync(join(repoRoot, 'workflows-templates', name), 'utf8');
    const copy = readFileSync(join(repoRoot, '.github', 'workflows', name), 'utf8');
    const want = repoCopyOfTemplate(template).split('\n');
    const got = copy.split('\n');
    const differences: string[] = [];
    for (let i = 0; i < Math.max(want.length, got.length); i++) {
      if (want[i] !== got[i]) differences.push(`.github/workflows/${name}:${i + 1}: is ${JSON.stringify(got[i] ?? '<end of file>')}, the template makes ${JSON.stringify(want[i] ?? '<end of file>')}`);
    }
    expect(differences).toEqual([]);
  });

  it('rewrites exactly the references to labforge', () => {
    const sha = '0123456789abcdef0123456789abcdef01234567';
    const t = [`    uses: OWNER/labforge/.github/workflows/build.yml@${sha} # v1`, '      labforge_repository: OWNER/labforge', `      labforge_ref: ${sha} # v1`, '      ref: v1', '    uses: OWNER/labforge/.github/workflows/build.yml@v1'].join('\n');
    expect(repoCopyOfTemplate(t).split('\n')).toEqual([
      '    uses: ./.github/workflows/build.yml',
      '      labforge_repository: ${{ github.repository }}',
      '      labforge_ref: ${{ github.sha }}',
      '      ref: v1',
      '    uses: OWNER/labforge/.github/workflows/build.yml@v1', // not a SHA pin: left alone, so the copy test fails
    ]);
  });
});

describe('the templates pin labforge by commit SHA', () => {
  const callers = ['build-on-demand.yml', 'release.yml'];
  const texts = Object.fromEntries(callers.map((n) => [`workflows-templates/${n}`, readFileSync(join(repoRoot, 'workflows-templates', n), 'utf8')]));

  it('both callers pin the reusable workflow and labforge_ref to the same full SHA, with # v1', () => {
    expect(checkTemplatePins(texts)).toEqual([]);
    const pins = Object.values(texts).flatMap(templatePins);
    expect(pins.map((p) => p.kind).sort()).toEqual(['labforge_ref', 'labforge_ref', 'uses', 'uses']);
    expect(new Set(pins.map((p) => p.value)).size).toBe(1);
  });

  it('names every pin that is not a SHA, lacks the comment, or names another commit', () => {
    const a = '0123456789abcdef0123456789abcdef01234567';
    const b = 'fedcba9876543210fedcba9876543210fedcba98';
    expect(
      checkTemplatePins({
        'one.yml': `jobs:\n  x:\n    uses: OWNER/labforge/.github/workflows/build.yml@v1\n    with:\n      labforge_ref: ${a} # v1\n`,
        'two.yml': `jobs:\n  x:\n    uses: OWNER/labforge/.github/workflows/build.yml@${b} # v1\n    with:\n      labforge_ref: ${b}\n`,
        'three.yml': 'jobs: {}\n',
      }),
    ).toEqual([
      "one.yml:3: uses is 'v1', not a full 40-hex commit SHA (run labforge pin --ref v1 one.yml)",
      "one.yml:3: uses has the comment '', want '# v1' (the ref the SHA was resolved from)",
      "two.yml:5: labforge_ref has the comment '', want '# v1' (the ref the SHA was resolved from)",
      'three.yml: has 0 `uses: OWNER/labforge/…@` pins (want exactly 1)',
      'three.yml: has 0 `labforge_ref:` pins (want exactly 1)',
      `the pins name 3 different commits (v1 at one.yml:3; ${a} at one.yml:5; ${b} at two.yml:3, two.yml:5); pin them together: labforge pin --ref v1 one.yml two.yml three.yml`,
    ]);
  });
});

describe('the consistency check itself', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'labforge-wf-check-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const check = (yaml: string) => {
    const path = join(dir, 'wf.yml');
    writeFileSync(path, yaml);
    return checkWorkflowConsistency(readYamlFile(path)).map((p) => p.replace(/^[^:]*wf\.yml:/, 'wf.yml:'));
  };

  it('reports undeclared inputs, undeclared outputs, missing needs and early reads, with file and line', () => {
    expect(existsSync(join(repoRoot, 'actions/detect-build-type/action.yml'))).toBe(true);
    const problems = check(`on:
  workflow_dispatch:
    inputs:
      version:
        type: string
jobs:
  a:
    runs-on: ubuntu-latest
    outputs:
      kind: \${{ steps.detect.outputs.build-type }}
      nope: \${{ steps.detect.outputs.flavour }}
    steps:
      - run: echo "\${{ steps.detect.outputs.version }}"
      - id: detect
        uses: ./actions/detect-build-type
        with:
          build-type: prewarmed
          colour: blue
          version: \${{ inputs.versoin }}
      - id: script
        run: echo "made=yes" >> "$GITHUB_OUTPUT"
      - run: echo \${{ steps.script.outputs.made }} \${{ steps.script.outputs.lost }}
  b:
    runs-on: ubuntu-latest
    steps:
      - run: echo \${{ needs.a.outputs.kind }}
  c:
    needs: a
    runs-on: ubuntu-latest
    steps:
      - uses: ./actions/no-such-action
      - run: echo \${{ needs.a.outputs.missing }}
`);
    expect(problems).toEqual([
      'wf.yml:11: jobs.a.outputs.nope reads steps.detect.outputs.flavour, which step detect does not produce (actions/detect-build-type/action.yml declares: appliance, artifact-name, build-type, first-boot, login, overwrite, reason, requires-kvm, runner-labels, source, storage-prefix, tag, template, timeout-minutes, version, version-source, warm)',
      'wf.yml:13: jobs.a.steps[0] "echo "${{ steps.detect.outputs.version }}"" reads steps.detect.outputs.version before step detect has run (it is step 1)',
      'wf.yml:19: jobs.a.steps[1] "detect" reads inputs.versoin, which the workflow\'s trigger does not declare (declared: version)',
      "wf.yml:18: jobs.a.steps[1] \"detect\" passes input 'colour' that actions/detect-build-type/action.yml does not declare (declared: appliance, build-type, marker, ova, runs-on, version)",
      'wf.yml:22: jobs.a.steps[3] "echo ${{ steps.script.outputs.made }} ${{ steps.script.outputs.lost }}" reads steps.script.outputs.lost, which step script does not produce (its run: script writes no \'lost=\' to $GITHUB_OUTPUT)',
      'wf.yml:26: jobs.b.steps[0] "echo ${{ needs.a.outputs.kind }}" reads needs.a.outputs.kind, but jobs.b does not list a in needs (needs: none)',
      'wf.yml:31: jobs.c.steps[0] "./actions/no-such-action" uses ./actions/no-such-action, but actions/no-such-action/action.yml does not exist (write it, or stop using the action here)',
      'wf.yml:32: jobs.c.steps[1] "echo ${{ needs.a.outputs.missing }}" reads needs.a.outputs.missing, which job a does not declare (it declares: kind, nope)',
    ]);
  });

  it('checks calls of the reusable workflow: inputs, required inputs, secrets', () => {
    const problems = check(`on: push
jobs:
  call:
    uses: ./.github/workflows/build.yml
    with:
      build_type: standard
      flavour: vanilla
    secrets: inherit
    permissions:
      contents: write
      id-token: write
      attestations: write
  after:
    needs: call
    runs-on: ubuntu-latest
    steps:
      - run: echo \${{ needs.call.outputs.url }} \${{ needs.call.outputs.colour }}
`);
    expect(problems).toEqual([
      expect.stringMatching(/^wf\.yml:7: jobs\.call passes input 'flavour' that \.github\/workflows\/build\.yml does not declare \(declared: accelerator, appliance, build_type, /),
      "wf.yml:4: jobs.call does not pass the required input 'labforge_repository' of .github/workflows/build.yml",
      "wf.yml:4: jobs.call does not pass the required input 'labforge_ref' of .github/workflows/build.yml",
      'wf.yml:8: jobs.call passes secrets: inherit; pass the secrets console_password, gcp_service_account, gcp_workload_identity_provider, registry_credential explicitly',
      expect.stringMatching(/^wf\.yml:17: jobs\.after\.steps\[0\] .* reads needs\.call\.outputs\.colour, which job call does not declare \(it declares: artifact_name, build_type, /),
    ]);
  });

  it('checks that a call of the reusable workflow grants every permission its jobs declare', () => {
    const problems = check(`on: push
jobs:
  call:
    permissions:
      contents: read
      id-token: write
    uses: ./.github/workflows/build.yml
    with:
      labforge_repository: OWNER/labforge
      labforge_ref: 0123456789abcdef0123456789abcdef01234567
`);
    expect(problems).toEqual([
      "wf.yml:5: jobs.call calls .github/workflows/build.yml, whose job attest needs attestations: write, but grants no attestations (a called workflow's jobs get at most what the caller grants; add attestations: write)",
      "wf.yml:5: jobs.call calls .github/workflows/build.yml, whose job release needs contents: write, but grants read contents (a called workflow's jobs get at most what the caller grants; add contents: write)",
    ]);
  });

  it('reads the outputs a run: script writes', () => {
    expect([...runScriptOutputs('work=1\n{\n  echo "path=$x"\n  echo sha=1\n  printf \'%s\\n\' "size=2"\n  echo "notes<<EOF"\n} >> "$GITHUB_OUTPUT"')].sort()).toEqual(['notes', 'path', 'sha']);
    expect([...runScriptOutputs('echo "path=$x"')]).toEqual([]);
  });
});
