#!/usr/bin/env node
// The test command (`npm test`): builds, runs every jest suite (test/**/*.test.ts) and every bats file
// (test/bats/*.bats), then prints one closing line: "tests: N passed, N failed, N skipped".
// Arguments are passed to jest (e.g. `npm test -- test/unit`); LABFORGE_SKIP_BATS=1 skips bats.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
const totals = { passed: 0, failed: 0, skipped: 0 };
let broken = false;

const run = (cmd, argv, opts = {}) => spawnSync(cmd, argv, { cwd: root, stdio: 'inherit', ...opts });

if (run(process.execPath, [join(root, 'scripts', 'build.mjs')]).status !== 0) {
  console.error('tests: the build failed');
  process.exit(1);
}

const tmp = mkdtempSync(join(tmpdir(), 'labforge-test-'));
const report = join(tmp, 'jest.json');
const jest = run(process.execPath, [join(root, 'node_modules', 'jest', 'bin', 'jest.js'), '--runInBand', '--json', '--outputFile', report, ...args], {
  env: { ...process.env, NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} --experimental-vm-modules --no-warnings=ExperimentalWarning`.trim() },
});
if (existsSync(report)) {
  const r = JSON.parse(readFileSync(report, 'utf8'));
  totals.passed += r.numPassedTests;
  totals.failed += r.numFailedTests;
  totals.skipped += r.numPendingTests + r.numTodoTests;
  if (r.numRuntimeErrorTestSuites > 0) broken = true;
} else {
  broken = true;
}
if (jest.status !== 0) broken = true;

const batsDir = join(root, 'test', 'bats');
const onlyJest = args.some((a) => a.startsWith('test/') && !a.startsWith('test/bats'));
const batsFiles = existsSync(batsDir) ? readdirSync(batsDir).filter((f) => f.endsWith('.bats')).sort() : [];
if (batsFiles.length > 0 && !onlyJest && process.env.LABFORGE_SKIP_BATS !== '1') {
  const bats = spawnSync('bats', ['--tap', ...batsFiles.map((f) => join(batsDir, f))], { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], maxBuffer: 64 * 1024 * 1024 });
  if (bats.error) {
    console.error(`tests: cannot run bats (${bats.error.message}); install it (apt-get install bats)`);
    broken = true;
  } else {
    process.stdout.write(bats.stdout);
    for (const line of bats.stdout.split('\n')) {
      if (/^ok \d+ .*# skip/.test(line)) totals.skipped++;
      else if (/^ok \d+/.test(line)) totals.passed++;
      else if (/^not ok \d+/.test(line)) totals.failed++;
    }
    if (bats.status !== 0) broken = true;
  }
}
rmSync(tmp, { recursive: true, force: true });

console.log(`tests: ${totals.passed} passed, ${totals.failed} failed, ${totals.skipped} skipped`);
process.exit(broken || totals.failed > 0 ? 1 : 0);
