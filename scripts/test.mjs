#!/usr/bin/env node
// The test command (`npm test`): builds, runs every jest suite (test/**/*.test.ts) and every bats file
// (test/bats/*.bats), then prints one closing line: "tests: N passed, N failed, N skipped".
// Arguments are passed to jest (e.g. `npm test -- test/unit`); LABFORGE_SKIP_BATS=1 skips bats.
// Without arguments jest runs in two lanes at once: the workflows e2e (one long file whose QEMU guest keeps one
// core busy) and every other file; each lane runs its files one at a time. bats runs at the same time too, at a
// lower priority (nice 10), so that its mostly short processes fill the time the guests leave idle. The second
// lane's and bats' output is printed after the first lane's. LABFORGE_TEST_LANES=1 runs jest as one lane;
// LABFORGE_SERIAL_TESTS=1 runs one jest lane and then bats.
import { spawn, spawnSync } from 'node:child_process';
import { closeSync, existsSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync } from 'node:fs';
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

const batsDir = join(root, 'test', 'bats');
const onlyJest = args.some((a) => a.startsWith('test/') && !a.startsWith('test/bats'));
const batsFiles = existsSync(batsDir) ? readdirSync(batsDir).filter((f) => f.endsWith('.bats')).sort() : [];
const wantBats = batsFiles.length > 0 && !onlyJest && process.env.LABFORGE_SKIP_BATS !== '1';

/** Starts bats (TAP into a file, not a pipe: nothing must block it while jest runs); resolves with its result. */
function startBats() {
  const out = join(tmp, 'bats.tap');
  const fd = openSync(out, 'w');
  const batsArgs = ['--tap', ...batsFiles.map((f) => join(batsDir, f))];
  const child = spawn('nice', ['-n', '10', 'bats', ...batsArgs], { cwd: root, stdio: ['ignore', fd, 'inherit'] });
  const started = Date.now();
  return new Promise((resolve) => {
    child.on('error', (error) => { closeSync(fd); resolve({ error, out, seconds: 0 }); });
    child.on('exit', (code, signal) => { closeSync(fd); resolve({ status: signal ? 1 : code, out, seconds: (Date.now() - started) / 1000 }); });
  });
}

/** The e2e file that gets a lane of its own (the longest by far: four workflow runs under TCG). */
const OWN_LANE = 'test/e2e/workflows.test.ts';

/** Runs jest; resolves with its exit status. `log` (a file) takes its output instead of this terminal. */
function runJest(report, jestArgs, log) {
  const fd = log ? openSync(log, 'w') : undefined;
  const child = spawn(process.execPath, [join(root, 'node_modules', 'jest', 'bin', 'jest.js'), '--runInBand', '--json', '--outputFile', report, ...jestArgs], {
    cwd: root,
    stdio: fd === undefined ? 'inherit' : ['ignore', fd, fd],
    env: { ...process.env, NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} --experimental-vm-modules --no-warnings=ExperimentalWarning`.trim() },
  });
  const started = Date.now();
  return new Promise((resolve) => {
    const done = (status) => {
      if (fd !== undefined) closeSync(fd);
      resolve({ status, report, log, seconds: (Date.now() - started) / 1000 });
    };
    child.on('error', () => done(1));
    child.on('exit', (code, signal) => done(signal ? 1 : code));
  });
}

/** Adds one lane's jest report to the totals. */
function count(lane) {
  if (existsSync(lane.report)) {
    const r = JSON.parse(readFileSync(lane.report, 'utf8'));
    totals.passed += r.numPassedTests;
    totals.failed += r.numFailedTests;
    totals.skipped += r.numPendingTests + r.numTodoTests;
    if (r.numRuntimeErrorTestSuites > 0) broken = true;
  } else {
    broken = true;
  }
  if (lane.status !== 0) broken = true;
}

const serial = process.env.LABFORGE_SERIAL_TESTS === '1';
const lanes = args.length === 0 && !serial && process.env.LABFORGE_TEST_LANES !== '1' && existsSync(join(root, OWN_LANE));
let bats = wantBats && !serial ? startBats() : undefined;
if (lanes) {
  const escaped = OWN_LANE.replace(/[.]/g, '\\.');
  const main = runJest(join(tmp, 'jest-main.json'), ['--testPathIgnorePatterns', `/${escaped}$`], join(tmp, 'jest-main.log'));
  console.log(`tests: jest runs in two lanes: ${OWN_LANE} here, every other file alongside it (its output follows)`);
  const own = await runJest(join(tmp, 'jest-own.json'), [OWN_LANE]);
  count(own);
  const m = await main;
  count(m);
  process.stdout.write(readFileSync(m.log, 'utf8'));
  console.log(`jest lanes: ${OWN_LANE} ${own.seconds.toFixed(0)} s; every other file ${m.seconds.toFixed(0)} s`);
} else {
  count(await runJest(join(tmp, 'jest.json'), args));
}

if (wantBats) {
  bats ??= startBats();
  const b = await bats;
  if (b.error) {
    console.error(`tests: cannot run bats (${b.error.message}); install it (apt-get install bats)`);
    broken = true;
  } else {
    const tap = readFileSync(b.out, 'utf8');
    process.stdout.write(tap);
    console.log(`bats: ${batsFiles.length} files in ${b.seconds.toFixed(0)} s${serial ? '' : ' (alongside jest)'}`);
    for (const line of tap.split('\n')) {
      if (/^ok \d+ .*# skip/.test(line)) totals.skipped++;
      else if (/^ok \d+/.test(line)) totals.passed++;
      else if (/^not ok \d+/.test(line)) totals.failed++;
    }
    if (b.status !== 0) broken = true;
  }
}
rmSync(tmp, { recursive: true, force: true });

console.log(`tests: ${totals.passed} passed, ${totals.failed} failed, ${totals.skipped} skipped`);
process.exit(broken || totals.failed > 0 ? 1 : 0);
