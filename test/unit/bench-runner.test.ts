/**
 * `npm run bench`: the runner knows every benchmark in bench/, each takes --quick, and the Markdown writer
 * replaces only the text between a section's markers, idempotently, and refuses a missing marker. The
 * first-boot section of docs/BENCHMARKS.md describes the workload the demo appliance's code has now. No
 * benchmark runs here.
 */
import { describe, expect, it } from '@jest/globals';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { chooseResources, labSettingsLines, loadAppliance } from '../../actions/lib/appliance.js';
import { labWorkload, shellDefault } from '../../bench/lib/lab-workload.js';
import { BENCHMARKS, benchFileNames, selectBenchmarks, unregistered } from '../../bench/lib/registry.js';
import { beginMarker, checkSections, endMarker, headerLine, replaceSection, sectionContent } from '../../bench/lib/sections.js';

const repo = resolve(import.meta.dirname ?? '.', '../..');
const benchFiles = benchFileNames(readdirSync(join(repo, 'bench')), '.ts');
const docs = readFileSync(join(repo, 'docs', 'BENCHMARKS.md'), 'utf8');

/** The text of the generated section `name` in docs/BENCHMARKS.md. */
function section(name: string): string {
  return docs.slice(docs.indexOf(beginMarker(name)) + beginMarker(name).length, docs.indexOf(endMarker(name)));
}

describe('the runner knows every benchmark', () => {
  it('registers exactly the bench/*.ts files (a new bench file that is not registered fails here)', () => {
    expect(benchFiles.length).toBeGreaterThanOrEqual(4);
    expect(unregistered(benchFiles)).toEqual([]);
    expect(BENCHMARKS.map((b) => b.name).sort()).toEqual(benchFiles);
  });

  it('runs all of them without --only', () => {
    expect(selectBenchmarks([]).map((b) => b.name).sort()).toEqual(benchFiles);
  });

  it('names a file it does not know', () => {
    expect(unregistered([...benchFiles, 'disk-io'])).toEqual(['disk-io']);
  });

  it('gives every benchmark a quick mode', () => {
    for (const name of benchFiles) {
      expect([name, /\bquick: \{ type: 'boolean'/.test(readFileSync(join(repo, 'bench', `${name}.ts`), 'utf8'))]).toEqual([name, true]);
    }
  });

  it('selects with --only, repeated or comma-separated, in run order', () => {
    expect(selectBenchmarks(['upload,ova-pack']).map((b) => b.name)).toEqual(['ova-pack', 'upload']);
    expect(selectBenchmarks(['first-boot', 'ssh-diagnose']).map((b) => b.name)).toEqual(['ssh-diagnose', 'first-boot']);
  });

  it('refuses an unknown --only name and lists the known ones', () => {
    expect(() => selectBenchmarks(['ova'])).toThrow(`--only: no benchmark named 'ova' (one of: ${BENCHMARKS.map((b) => b.name).join(', ')})`);
  });

  it('has a section with both markers in docs/BENCHMARKS.md for every benchmark', () => {
    expect(() => checkSections(docs, benchFiles)).not.toThrow();
  });
});

describe('the Markdown writer', () => {
  const doc = ['# Benchmarks', '', 'hand-written text', '<!-- bench:a:begin -->', 'old a', '<!-- bench:a:end -->', 'between', '<!-- bench:b:begin -->', '<!-- bench:b:end -->', 'after', ''].join('\n');

  it('replaces only the text between the markers of that section', () => {
    const out = replaceSection(doc, 'a', 'new a\n\n| x |\n|---|\n| 1 |\n\n');
    expect(out).toBe(['# Benchmarks', '', 'hand-written text', '<!-- bench:a:begin -->', 'new a', '', '| x |', '|---|', '| 1 |', '<!-- bench:a:end -->', 'between', '<!-- bench:b:begin -->', '<!-- bench:b:end -->', 'after', ''].join('\n'));
  });

  it('fills an empty section and leaves the others alone', () => {
    const out = replaceSection(doc, 'b', 'b content');
    expect(out).toContain('old a');
    expect(out).toContain('<!-- bench:b:begin -->\nb content\n<!-- bench:b:end -->\nafter\n');
  });

  it('is idempotent: writing the same content twice gives the same file', () => {
    const once = replaceSection(doc, 'a', 'new a\nline 2\n');
    expect(replaceSection(once, 'a', 'new a\nline 2\n')).toBe(once);
  });

  it('fails on a missing marker, naming it', () => {
    expect(() => replaceSection(doc, 'c', 'x')).toThrow('docs/BENCHMARKS.md: the marker <!-- bench:c:begin --> is missing');
    const noEnd = doc.replace('<!-- bench:b:end -->\n', '');
    expect(() => replaceSection(noEnd, 'b', 'x')).toThrow('the marker <!-- bench:b:end --> is missing');
    expect(() => checkSections(noEnd, ['a', 'b'])).toThrow('<!-- bench:b:end -->');
  });

  it('fails on a doubled or reversed pair of markers', () => {
    expect(() => replaceSection(`${doc}<!-- bench:a:end -->\n`, 'a', 'x')).toThrow('the marker <!-- bench:a:end --> appears 2 times');
    const reversed = doc.replace('<!-- bench:b:begin -->\n<!-- bench:b:end -->', '<!-- bench:b:end -->\n<!-- bench:b:begin -->');
    expect(() => replaceSection(reversed, 'b', 'x')).toThrow('comes before');
  });

  it('heads a section with the date, the command, quick or full, the machine and the load average', () => {
    const facts = { date: new Date('2026-11-30T19:05:00Z'), command: 'npm run bench -- --quick --markdown', quick: true, machine: '2 cores (AMD EPYC), 23.5 GiB memory', load: [3.07, 1.6, 1.38], seconds: 42.4 };
    expect(headerLine(facts)).toBe('_Generated 2026-11-30 19:05 UTC by `npm run bench -- --quick --markdown` (quick run, 42 s) on 2 cores (AMD EPYC), 23.5 GiB memory; load average at start 3.07 / 1.60 / 1.38._');
    expect(headerLine({ ...facts, quick: false })).toContain('(full run, 42 s)');
    const content = sectionContent('ova-pack', facts, '| t |\n');
    expect(content.split('\n')).toEqual(['<!-- generated by `npm run bench -- --markdown` from bench/ova-pack.ts: edit the code or the text outside the markers, not this -->', headerLine(facts), '', '| t |']);
  });
});

describe("the first-boot text comes from the lab's code", () => {
  it('takes what the manifest sets from the manifest', () => {
    const w = labWorkload('TEST_LAB_SWITCHES=8\nTEST_LAB_DISK_MIB=40\nREADY_INTERVAL=1', 'test-lab', repo);
    expect(w.description).toContain('writes 8 simulated switch disks of 40 MiB each');
    expect(w.description).toContain('(320 MiB of incompressible data)');
    expect(w.description).toContain('every 1 s (READY_INTERVAL, from the manifest)');
  });

  it("takes what the manifest leaves out from the guest scripts' defaults", () => {
    const root = mkdtempSync(join(tmpdir(), 'labforge-bench-workload-'));
    try {
      mkdirSync(join(root, 'packer', 'guest', 'drivers'), { recursive: true });
      writeFileSync(join(root, 'packer', 'guest', 'hedgehog-lab'), 'READY_INTERVAL="${HEDGEHOG_LAB_READY_INTERVAL:-${READY_INTERVAL:-7}}"\n');
      writeFileSync(join(root, 'packer', 'guest', 'drivers', 'test-lab.sh'), 'SWITCHES="${TEST_LAB_SWITCHES:-3}"\nDISK_MIB="${TEST_LAB_DISK_MIB:-24}"\n');
      const w = labWorkload('', 'test-lab', root);
      expect(w.settings).toEqual({ READY_INTERVAL: '7', TEST_LAB_SWITCHES: '3', TEST_LAB_DISK_MIB: '24' });
      expect(w.description).toContain("writes 3 simulated switch disks of 24 MiB each (TEST_LAB_SWITCHES, packer/guest/drivers/test-lab.sh's default");
      expect(w.description).toContain("every 7 s (READY_INTERVAL, packer/guest/hedgehog-lab's default)");
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });

  it('fails rather than guess when a script has no default', () => {
    expect(() => shellDefault('SWITCHES="$TEST_LAB_SWITCHES"', 'TEST_LAB_SWITCHES', 'test-lab.sh')).toThrow('test-lab.sh: no default for TEST_LAB_SWITCHES');
  });

  it("docs/BENCHMARKS.md's generated first-boot section describes the demo appliance's current workload (rerun the benchmark when this fails)", async () => {
    const app = await loadAppliance(join(repo, 'packer', 'demo-lab'));
    const w = labWorkload(labSettingsLines(app, chooseResources(app)), app.lab.driver, repo);
    expect(section('first-boot')).toContain(w.description);
  });
});
