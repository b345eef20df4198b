/**
 * `labforge pin` against real git repositories: a temporary labforge-like repository with a moving `v1`
 * tag (lightweight and annotated), resolved locally (--repository-dir) and as a remote (--remote), on
 * copies of the real templates.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pinText } from '../../cli/commands/pin.js';
import { repoRoot } from '../support/run-action.js';
import { runCli } from '../support/run-cli.js';
import { checkTemplatePins, repoCopyOfTemplate } from '../support/workflow-consistency.js';

let dir: string;
let repo: string;
let work: string;
const shas: string[] = [];

const git = (...args: string[]) =>
  execFileSync('git', ['-C', repo, ...args], {
    encoding: 'utf8',
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: dir, GIT_CONFIG_NOSYSTEM: '1', GIT_AUTHOR_NAME: 't', GIT_AUTHOR_EMAIL: 't@example.com', GIT_COMMITTER_NAME: 't', GIT_COMMITTER_EMAIL: 't@example.com' },
  }).trim();

/** Fresh copies of the two caller templates in the work directory. */
const copyTemplates = () => {
  for (const n of ['build-on-demand.yml', 'release.yml']) copyFileSync(join(repoRoot, 'workflows-templates', n), join(work, n));
  return [join(work, 'build-on-demand.yml'), join(work, 'release.yml')];
};
const pinsOf = (file: string) => [...readFileSync(file, 'utf8').matchAll(/(?:@|labforge_ref: )([0-9a-f]{40}) # v1$/gm)].map((m) => m[1]);

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'labforge-pin-'));
  repo = join(dir, 'labforge');
  work = join(dir, 'work');
  mkdirSync(repo);
  mkdirSync(work);
  git('init', '-q', '-b', 'main');
  for (const n of [1, 2, 3]) {
    git('commit', '-q', '--allow-empty', '-m', `commit ${n}`);
    shas.push(git('rev-parse', 'HEAD'));
  }
  git('tag', 'v1', shas[0]!); // lightweight, moved later
  git('tag', '-a', 'v1.0.0', '-m', 'release 1.0.0', shas[0]!); // annotated: resolves to its commit, not the tag object
  git('tag', '-a', 'v2', '-m', 'major 2', shas[2]!);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('labforge pin', () => {
  it('pins both templates to the commit v1 names, prints each change, and keeps them valid templates', async () => {
    const files = copyTemplates();
    const r = await runCli(['pin', '--ref', 'v1', '--repository-dir', repo, ...files]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    for (const f of files) expect(pinsOf(f)).toEqual([shas[0], shas[0]]);
    expect(r.stdout).toMatch(new RegExp(`build-on-demand\\.yml:\\d+: uses [0-9a-f]{40} -> ${shas[0]} # v1\\n`));
    expect(r.stdout).toMatch(new RegExp(`release\\.yml:\\d+: labforge_ref [0-9a-f]{40} -> ${shas[0]} # v1\\n`));
    expect(r.stdout.trim().split('\n').pop()).toBe(`v1 is ${shas[0]}: 4 lines changed in 2 files`);
    // Only the pins changed: the rest of each file is the template's, and the pin format test still holds.
    for (const [i, n] of ['build-on-demand.yml', 'release.yml'].entries()) {
      const pinned = readFileSync(files[i]!, 'utf8');
      expect(repoCopyOfTemplate(pinned)).toBe(repoCopyOfTemplate(readFileSync(join(repoRoot, 'workflows-templates', n), 'utf8')));
    }
    expect(checkTemplatePins(Object.fromEntries(files.map((f) => [f, readFileSync(f, 'utf8')])))).toEqual([]);
  });

  it('is idempotent: a second run changes nothing and does not touch the files', async () => {
    const files = copyTemplates();
    expect((await runCli(['pin', '--ref', 'v1', '--repository-dir', repo, ...files])).code).toBe(0);
    const before = files.map((f) => [readFileSync(f, 'utf8'), statSync(f).mtimeMs]);
    const again = await runCli(['pin', '--ref', 'v1', '--repository-dir', repo, ...files]);
    expect(again.code).toBe(0);
    expect(again.stdout).toBe(`${files[0]}: already pinned to ${shas[0]} (v1)\n${files[1]}: already pinned to ${shas[0]} (v1)\nv1 is ${shas[0]}: 0 lines changed in 0 files\n`);
    expect(files.map((f) => [readFileSync(f, 'utf8'), statSync(f).mtimeMs])).toEqual(before);
  });

  it('follows the moving tag, locally and through git ls-remote', async () => {
    const files = copyTemplates();
    git('tag', '-f', 'v1', shas[1]!);
    try {
      expect((await runCli(['pin', '--ref', 'v1', '--repository-dir', repo, ...files])).code).toBe(0);
      for (const f of files) expect(pinsOf(f)).toEqual([shas[1], shas[1]]);
      git('tag', '-f', 'v1', shas[2]!);
      const remote = await runCli(['pin', '--remote', `file://${repo}`, '--ref', 'v1', ...files]);
      expect(remote.code).toBe(0);
      expect(remote.stdout.trim().split('\n').pop()).toBe(`v1 is ${shas[2]} at file://${repo}: 4 lines changed in 2 files`);
      for (const f of files) expect(pinsOf(f)).toEqual([shas[2], shas[2]]);
    } finally {
      git('tag', '-f', 'v1', shas[0]!);
    }
  });

  it('resolves an annotated tag to its commit, locally and at a remote', async () => {
    const file = join(work, 'annotated.yml');
    writeFileSync(file, 'jobs:\n  build:\n    uses: acme/labforge/.github/workflows/build.yml@v2 # v2\n    with:\n      labforge_ref: "v2" # v2\n');
    expect((await runCli(['pin', '--ref', 'v2', '--remote', repo, file])).code).toBe(0);
    expect(readFileSync(file, 'utf8')).toBe(`jobs:\n  build:\n    uses: acme/labforge/.github/workflows/build.yml@${shas[2]} # v2\n    with:\n      labforge_ref: "${shas[2]}" # v2\n`);
    writeFileSync(file, 'jobs:\n  build:\n    with:\n      labforge_ref: x # v1.0.0\n');
    expect((await runCli(['pin', '--ref', 'v1.0.0', '--repository-dir', repo, file])).code).toBe(0);
    expect(readFileSync(file, 'utf8')).toContain(`labforge_ref: ${shas[0]} # v1.0.0`);
  });

  it('exits 2 with one line for a ref that does not exist, and writes nothing', async () => {
    const files = copyTemplates();
    for (const f of files) writeFileSync(f, readFileSync(f, 'utf8').replace(/ # v1$/gm, ' # v9')); // pinned to a ref labforge lacks
    const before = files.map((f) => readFileSync(f, 'utf8'));
    const local = await runCli(['pin', '--ref', 'v9', '--repository-dir', repo, ...files]);
    expect(local.code).toBe(2);
    expect(local.stderr).toBe(`labforge pin: ref: 'v9' names no commit in ${repo} (give a tag, branch or commit of that repository (git tag --list shows its tags))\n`);
    const remote = await runCli(['pin', '--ref', 'v9', '--remote', repo, ...files]);
    expect(remote.code).toBe(2);
    expect(remote.stderr).toBe(`labforge pin: ref: 'v9' is neither a tag nor a branch of ${repo} (give a ref the remote has (git ls-remote --tags URL lists them))\n`);
    expect(files.map((f) => readFileSync(f, 'utf8'))).toEqual(before);
  });

  it('exits 2 for a file without pin lines, a missing file, no file, an option-like ref, and both sources', async () => {
    const plain = join(work, 'plain.yml');
    writeFileSync(plain, 'on: push\njobs:\n  a:\n    uses: acme/labforge/.github/workflows/build.yml@abc # v2\n');
    const cases: [string[], RegExp][] = [
      [['pin', '--ref', 'v1', '--repository-dir', repo, plain], /^labforge pin: FILE: .*plain\.yml has no labforge pin line for v1 \(pin lines end with '# v1': /],
      [['pin', '--ref', 'v1', '--repository-dir', repo, join(work, 'nope.yml')], /^labforge pin: FILE: cannot read .*nope\.yml \(ENOENT\)/],
      [['pin', '--ref', 'v1', '--repository-dir', repo], /^labforge pin: FILE: no workflow file given/],
      [['pin', '--ref=--upload-pack=touch', '--remote', repo, plain], /^labforge pin: ref: '--upload-pack=touch' is not a tag or branch name/],
      [['pin', '--ref', 'v1', '--remote', repo, '--repository-dir', repo, plain], /^labforge pin: remote: is given together with repository-dir/],
      [['pin', '--ref', 'v1', '--repository-dir', work, ...copyTemplates()], /^labforge pin: repository-dir: .*work is not a git repository/],
      [['pin', plain], /^labforge pin: ref: is required but empty/],
    ];
    for (const [args, message] of cases) {
      const r = await runCli(args, { cwd: dir });
      expect([r.code, r.stderr.split('\n').length, r.stderr]).toEqual([2, 2, expect.stringMatching(message)]);
    }
  });

  it('exits 1 when the remote cannot be read', async () => {
    const r = await runCli(['pin', '--ref', 'v1', '--remote', join(dir, 'no-such-repo'), ...copyTemplates()]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^labforge pin: cannot list the refs of .*no-such-repo: /);
  });

  it('has --help with the examples', async () => {
    const r = await runCli(['pin', '--help']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('labforge pin --ref REF [--repository-dir DIR | --remote URL] FILE...');
    expect(r.stdout).toContain('node bin/labforge pin --ref v1 workflows-templates/build-on-demand.yml workflows-templates/release.yml');
  });
});

describe('pinText', () => {
  const sha = 'a'.repeat(40);
  it('rewrites only lines whose comment names the ref, keeping indentation, quotes, list items and CRLF', () => {
    const text = [
      '  - uses: acme/labforge/actions/detect-build-type@v1 # v1\r',
      "    uses: 'acme/labforge/.github/workflows/build.yml@0123' # v1",
      '    uses: acme/labforge/.github/workflows/build.yml@v2 # v2',
      '    uses: actions/checkout@11bd71901bbe5b1630ceea73d27597364c9af683 # v1',
      '      labforge_ref: v1',
      '      labforge_ref:   old   #   v1  ',
    ].join('\n');
    const r = pinText(text, 'v1', sha);
    expect(r.text.split('\n')).toEqual([
      `  - uses: acme/labforge/actions/detect-build-type@${sha} # v1\r`,
      `    uses: 'acme/labforge/.github/workflows/build.yml@${sha}' # v1`,
      '    uses: acme/labforge/.github/workflows/build.yml@v2 # v2',
      '    uses: actions/checkout@11bd71901bbe5b1630ceea73d27597364c9af683 # v1', // not labforge
      '      labforge_ref: v1', // no comment: not a pin line
      `      labforge_ref:   ${sha}   #   v1  `,
    ]);
    expect(r.pins.map((p) => [p.line, p.kind, p.from])).toEqual([
      [1, 'uses', 'v1'],
      [2, 'uses', '0123'],
      [6, 'labforge_ref', 'old'],
    ]);
    expect(pinText(r.text, 'v1', sha).text).toBe(r.text);
  });
});
