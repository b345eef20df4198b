/**
 * packer-build on an appliance with real Packer (Debian's 1.6.6), up to `packer validate`: the Hedgehog
 * template gets exactly the variable contract (its per-build key and autoinstall seed included) and
 * validates without fetching anything; what an appliance gets wrong is refused before Packer starts.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { cpSync, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'yaml';
import { inputsFrom } from '../../actions/lib/inputs.js';
import { readPackerBuildOptions, runPackerBuild, type BuildReporter } from '../../actions/lib/packer-build.js';
import { repoRoot } from '../support/run-action.js';
import { runCli } from '../support/run-cli.js';

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'labforge-appliance-build-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function recorder(): BuildReporter & { lines: string[] } {
  const lines: string[] = [];
  return { lines, line: (l) => lines.push(l), startGroup: (g) => lines.push(`## ${g}`), endGroup: () => undefined };
}

const hedgehog = join(repoRoot, 'packer/hedgehog-lab');
// The manifest leaves hhfab's SHA-256 empty until someone reads it from the release asset, and the build needs a
// registry credential (environment only): validation gets placeholders, as a builder gives the real ones.
const HHFAB_SHA256_FOR_VALIDATION = `hhfab_sha256=${'0'.repeat(64)}`;
const REGISTRY_ENV = { PKR_VAR_registry_auth: 'validation:placeholder' };

describe('the Hedgehog appliance validates through the variable contract', () => {
  it('labforge build --appliance packer/hedgehog-lab --version 1.0.0 --validate-only exits 0', async () => {
    const out = join(dir, 'cli');
    const r = await runCli(['build', '--appliance', hedgehog, '--version', '1.0.0', '--validate-only', '--output-dir', out, '--vars', HHFAB_SHA256_FOR_VALIDATION], { env: REGISTRY_ENV });
    expect(r.stderr).toContain('packer validate: hedgehog-lab is valid');
    expect(r.code).toBe(0);
    // seed_dir and ssh_private_key_file have no default: Packer validates only when packer-build gave them.
    // Nothing was fetched (the ISO checksum is a literal, not a SHA256SUMS URL).
    const log = readFileSync(join(out, 'packer-build.log'), 'utf8');
    expect(log).toContain('Packer version: 1.6.6');
    expect(log).not.toMatch(/SHA256SUMS|Downloading|http/i);
  });

  it('renders the autoinstall seed with the build key and removes key and seed afterwards', async () => {
    const rep = recorder();
    const seen: string[] = [];
    const options = readPackerBuildOptions(inputsFrom({ appliance: hedgehog, version: '1.0.0', 'validate-only': 'true', 'output-dir': join(dir, 'v2'), 'plugin-cache': 'false', vars: HHFAB_SHA256_FOR_VALIDATION }));
    process.env.PKR_VAR_registry_auth = REGISTRY_ENV.PKR_VAR_registry_auth;
    const r = await runPackerBuild(options, {
      reporter: {
        ...rep,
        line: (l) => {
          rep.line(l);
          // While Packer validates, the seed exists: read it then.
          for (const d of readdirSync(tmpdir()).filter((n) => n.startsWith('labforge-packer-'))) {
            const base = join(tmpdir(), d);
            for (const s of existsSync(base) ? readdirSync(base).filter((n) => n.startsWith('labforge-seed-')) : []) {
              const ud = join(base, s, 'user-data');
              if (existsSync(ud)) seen.push(readFileSync(ud, 'utf8'));
            }
          }
        },
      },
    });
    delete process.env.PKR_VAR_registry_auth;
    expect(r.steps.find((s) => s.step === 'validate')?.status).toBe('ok');
    expect(r.steps.find((s) => s.step === 'build')?.status).toBe('skipped');
    expect(seen.length).toBeGreaterThan(0);
    const doc = parse(seen[0]!) as { autoinstall: { 'user-data': { users: { name: string; ssh_authorized_keys?: string[] }[] } } };
    const users = doc.autoinstall['user-data'].users;
    expect(users.map((u) => u.name)).toEqual(['labforge', 'lab']);
    expect(users[0]!.ssh_authorized_keys).toHaveLength(1);
    expect(users[1]!.ssh_authorized_keys).toBeUndefined();
    // Every outcome removes the work directory with the key and the seed.
    expect(readdirSync(tmpdir()).filter((n) => n.startsWith('labforge-packer-')).filter((d) => readdirSync(join(tmpdir(), d)).some((s) => s.startsWith('labforge-seed-')))).toEqual([]);
  });
});

describe('what an appliance gets wrong is refused before Packer starts', () => {
  function copyHedgehog(change: (templateText: string) => string): string {
    const copy = join(dir, `hh-${Math.random().toString(36).slice(2)}`);
    cpSync(hedgehog, copy, { recursive: true });
    const vars = join(copy, 'variables.pkr.hcl');
    writeFileSync(vars, change(readFileSync(vars, 'utf8')));
    return copy;
  }

  it('a template missing a contract variable is named', async () => {
    const app = copyHedgehog((t) => t.replace(/variable "seed_dir" \{[^}]*\}/, ''));
    const r = await runCli(['build', '--appliance', app, '--version', '1.0.0', '--validate-only', '--output-dir', join(dir, 'bad1')]);
    expect(r.code).toBe(2);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/appliance: the template .* does not declare "seed_dir" \(the variable contract every appliance template honours\)/);
    expect(existsSync(join(dir, 'bad1', 'packer-build.log'))).toBe(false);
  });

  it('an appliance that requires KVM is refused under TCG', async () => {
    const r = await runCli(['build', '--appliance', hedgehog, '--version', '1.0.0', '--accelerator', 'tcg', '--output-dir', join(dir, 'bad2')]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^labforge build: accelerator: tcg cannot build hedgehog-lab: its manifest says kvm: required/);
  });

  it('resources below the manifest minimum are refused', async () => {
    const r = await runCli(['build', '--appliance', hedgehog, '--version', '1.0.0', '--memory-mib', '1024', '--validate-only']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/memory-mib: 1024 is below the minimum 23552 of hedgehog-lab/);
  });

  it('template and appliance together are refused', async () => {
    const r = await runCli(['build', '--appliance', hedgehog, '--template', hedgehog, '--version', '1.0.0']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/template: is set together with appliance/);
  });
});
