/** The subcommands that mirror an action carry the action's name; the short names stay as aliases. */
import { describe, expect, it } from '@jest/globals';
import { runCli } from '../support/run-cli.js';

const renamed = [
  ['packer-build', 'build'],
  ['vlab-warm', 'warm'],
  ['upload-artifact', 'upload'],
] as const;

describe('command names that match the actions', () => {
  it('labforge --help lists each action name with its alias', async () => {
    const run = await runCli(['--help']);
    expect(run.code).toBe(0);
    for (const [name, alias] of renamed) expect(run.stdout).toMatch(new RegExp(`^  ${name} \\(alias: ${alias}\\) +\\S`, 'm'));
    expect(run.stdout).not.toMatch(/^ {2}(build|warm|upload) /m);
  });

  it.each(renamed)('%s and its alias %s print the same help, under the action name', async (name, alias) => {
    const real = await runCli([name, '--help']);
    const short = await runCli([alias, '--help']);
    expect(real.code).toBe(0);
    expect(short).toEqual(real);
    expect(real.stdout.split('\n').slice(0, 2)).toEqual([expect.stringMatching(new RegExp(`^labforge ${name} `)), `(alias: labforge ${alias})`]);
  });

  it.each(renamed)('%s and its alias %s refuse the same bad input with the same line', async (name, alias) => {
    const real = await runCli([name, '--no-such-flag']);
    const short = await runCli([alias, '--no-such-flag']);
    expect([real.code, short.code]).toEqual([2, 2]);
    expect(real.stderr).toBe(`labforge ${name}: unknown option --no-such-flag (see labforge ${name} --help)\n`);
    expect(short.stderr).toBe(real.stderr.replaceAll(`labforge ${name}`, `labforge ${alias}`));
  });

  it('runs the same operation under both names: packer-build and build refuse a missing version alike', async () => {
    const real = await runCli(['packer-build', '--template', 'x.pkr.hcl']);
    const short = await runCli(['build', '--template', 'x.pkr.hcl']);
    expect(real.code).toBe(2);
    expect(real.stderr).toMatch(/^labforge packer-build: \S+: .+\n$/);
    expect(short).toEqual({ ...real, stderr: real.stderr.replace('labforge packer-build:', 'labforge build:') });
  });
});
