/**
 * Runs every benchmark (bench/lib/registry.ts), each in its own process, prints its tables, and with
 * `--markdown` rewrites its generated section of docs/BENCHMARKS.md (between its markers), so the text
 * always matches the code that produced it.
 *
 *   npm run bench [-- --quick] [--only NAME[,NAME]] [--markdown]
 *
 * --quick     each benchmark's quick mode (fewer sizes or runs, smaller images; same code path and baseline):
 *             a few minutes on 2 cores instead of the better part of an hour
 * --only      run only these benchmarks (repeatable or comma-separated)
 * --markdown  write each finished benchmark's section into docs/BENCHMARKS.md; a missing marker is an
 *             error before anything runs; a failed benchmark leaves its section as it was
 * Exit: 0 all ran, 1 a benchmark failed, 2 bad arguments or a missing marker.
 */
import { spawn } from 'node:child_process';
import { copyFileSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { printable } from '../actions/lib/escape.js';
import { BENCHMARKS, benchFileNames, selectBenchmarks, unregistered, type Benchmark } from './lib/registry.js';
import { checkSections, loadAverage, machineDescription, replaceSection, sectionContent } from './lib/sections.js';

const here = dirname(fileURLToPath(import.meta.url));
/** build/bench → the repository root. */
const root = resolve(here, '..', '..');
const docsFile = join(root, 'docs', 'BENCHMARKS.md');

function usageError(message: string): never {
  process.stderr.write(`bench: ${message}\n`);
  process.exit(2);
}

function options(): { quick: boolean; markdown: boolean; only: string[]; argv: string[] } {
  const argv = process.argv.slice(2);
  try {
    const { values } = parseArgs({ args: argv, options: { quick: { type: 'boolean', default: false }, markdown: { type: 'boolean', default: false }, only: { type: 'string', multiple: true, default: [] } } });
    return { quick: values.quick!, markdown: values.markdown!, only: values.only!, argv };
  } catch (e) {
    return usageError(`${printable((e as Error).message)} (options: --quick, --only NAME, --markdown)`);
  }
}

// The benchmarks run from a private copy of build/bench: another `node scripts/build.mjs` in the same checkout
// (rewriting build/bench) cannot pull a bundle from under a running benchmark or its child processes.
let snapshot: string | undefined;
const removeSnapshot = () => {
  if (snapshot) rmSync(snapshot, { recursive: true, force: true });
  snapshot = undefined;
};
function takeSnapshot(names: string[]): string {
  const dir = mkdtempSync(join(tmpdir(), 'labforge-bench-run-'));
  snapshot = dir;
  writeFileSync(join(dir, 'package.json'), '{ "type": "module" }\n');
  for (const name of names) {
    for (const f of [`${name}.js`, `${name}.js.map`]) if (existsSync(join(here, f))) copyFileSync(join(here, f), join(dir, f));
  }
  return dir;
}

// On SIGINT/SIGTERM the running benchmark gets the signal (by its PID) and cleans up; then the runner stops.
let current: ReturnType<typeof spawn> | undefined;
let interrupted = false;
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    interrupted = true;
    if (current?.pid) current.kill(signal);
    else {
      removeSnapshot();
      process.exit(130);
    }
  });
}

/** Runs one benchmark, teeing its stdout; resolves with the output, exit code and wall time. */
function runOne(b: Benchmark, quick: boolean, dir: string): Promise<{ code: number | null; output: string; seconds: number }> {
  const t0 = performance.now();
  return new Promise((res, rej) => {
    const child = spawn(process.execPath, ['--enable-source-maps', join(dir, `${b.name}.js`), ...(quick ? ['--quick'] : [])], { cwd: root, stdio: ['ignore', 'pipe', 'inherit'] });
    current = child;
    let output = '';
    child.stdout!.on('data', (d: Buffer) => {
      output += d.toString();
      process.stdout.write(d);
    });
    child.on('error', rej);
    child.on('close', (code) => {
      current = undefined;
      res({ code, output, seconds: (performance.now() - t0) / 1000 });
    });
  });
}

async function main(): Promise<number> {
  const opts = options();
  let selected: Benchmark[];
  try {
    selected = selectBenchmarks(opts.only);
  } catch (e) {
    return usageError((e as Error).message);
  }
  const built = benchFileNames(readdirSync(here), '.js');
  const stray = unregistered(built);
  if (stray.length > 0) usageError(`build/bench has benchmarks the runner does not know: ${stray.join(', ')} (add them to bench/lib/registry.ts; if bench/<name>.ts is gone, delete build/bench/<name>.js)`);
  const missing = selected.filter((b) => !existsSync(join(here, `${b.name}.js`)));
  if (missing.length > 0) usageError(`not built: ${missing.map((b) => `build/bench/${b.name}.js`).join(', ')} (run node scripts/build.mjs --bench)`);
  if (opts.markdown) {
    try {
      checkSections(readFileSync(docsFile, 'utf8'), selected.map((b) => b.name));
    } catch (e) {
      return usageError((e as Error).message);
    }
  }
  if (selected.some((b) => b.root) && process.getuid?.() !== 0) {
    usageError(`${selected.filter((b) => b.root).map((b) => b.name).join(', ')} needs root (it creates users and runs sshd): run as root or leave it out with --only`);
  }

  const dir = takeSnapshot(selected.map((b) => b.name));
  const command = `npm run bench -- ${opts.argv.join(' ')}`.trim().replace(/ --$/, '');
  const machine = machineDescription();
  const started = performance.now();
  const summary: string[] = [];
  let failed = 0;
  process.stderr.write(`bench: ${selected.length} of ${BENCHMARKS.length} benchmarks, ${opts.quick ? 'quick' : 'full'}, on ${machine}\n`);
  try {
    for (const b of selected) {
      const date = new Date();
      const load = loadAverage();
      process.stderr.write(`\n== ${b.name}: ${b.what}${opts.quick ? ` (quick: ${b.quick})` : ''}; load average ${load.map((l) => l.toFixed(2)).join(' ')} ==\n`);
      process.stdout.write(`\n## ${b.name}\n\n`);
      const r = await runOne(b, opts.quick, dir);
      if (interrupted) return 130;
      const ok = r.code === 0;
      if (!ok) failed++;
      summary.push(`${b.name.padEnd(14)} ${ok ? 'ok    ' : `FAILED (exit ${r.code})`} ${r.seconds.toFixed(0).padStart(6)} s`);
      if (ok && opts.markdown) {
        const content = sectionContent(b.name, { date, command, quick: opts.quick, machine, load, seconds: r.seconds }, r.output);
        // Read again right before writing: other sections may have been written (or the text edited) meanwhile.
        writeFileSync(docsFile, replaceSection(readFileSync(docsFile, 'utf8'), b.name, content));
        process.stderr.write(`bench: wrote the ${b.name} section of docs/BENCHMARKS.md\n`);
      } else if (!ok && opts.markdown) {
        process.stderr.write(`bench: ${b.name} failed; its section of docs/BENCHMARKS.md is left as it was\n`);
      }
    }
  } finally {
    removeSnapshot();
  }
  process.stderr.write(`\nbench: ${opts.quick ? 'quick' : 'full'} run, wall time ${((performance.now() - started) / 1000).toFixed(0)} s\n  ${summary.join('\n  ')}\n`);
  return failed > 0 ? 1 : 0;
}

process.exitCode = await main();
