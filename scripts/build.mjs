#!/usr/bin/env node
// Bundles every action (actions/<name>/main.ts → actions/<name>/dist/index.js), the CLI (cli/labforge.ts →
// cli/dist/index.js) and the benchmarks (build/bench, not committed). The action and CLI bundles are committed, so
// a workflow runs labforge from its checkout without installing anything (no npm ci in a job that holds tokens).
// `--check` bundles them into a temporary directory and fails if the committed dist/ differs. `--bench` bundles
// only the benchmarks (they import actions/lib from source; `npm run bench` uses it and leaves dist/ alone).
import { build } from 'esbuild';
import { mkdtempSync, readdirSync, existsSync, readFileSync, writeFileSync, mkdirSync, rmSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { tmpdir } from 'node:os';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const check = process.argv.includes('--check');
const benchOnly = process.argv.includes('--bench');

// The @actions packages are ESM-only and some dependencies use import.meta.url, so the bundles are ESM;
// CommonJS dependencies inside them still need require/__filename/__dirname.
const banner = [
  "import { createRequire as __lfCreateRequire } from 'node:module';",
  "import { fileURLToPath as __lfFileURLToPath } from 'node:url';",
  "import { dirname as __lfDirname } from 'node:path';",
  'const require = __lfCreateRequire(import.meta.url);',
  'const __filename = __lfFileURLToPath(import.meta.url);',
  'const __dirname = __lfDirname(__filename);',
].join('\n');

const common = {
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  banner: { js: banner },
  // ssh2's optional native addons: without them ssh2 falls back to pure JavaScript. Only those: a wider '*.node'
  // would also leave out JavaScript modules named index.node.js (@cyclonedx/cyclonedx-library's './contrib/index.node').
  // libxmljs2: @cyclonedx/cyclonedx-library's optional XML validator (native, not installed; the library tries it
  // and goes without).
  external: ['cpu-features', '*/sshcrypto.node', 'libxmljs2'],
  logLevel: 'warning',
  legalComments: 'none',
};

const actions = readdirSync(join(root, 'actions'), { withFileTypes: true })
  .filter((d) => d.isDirectory() && existsSync(join(root, 'actions', d.name, 'main.ts')))
  .map((d) => d.name)
  .sort();

/** The committed bundles: [entry point, dist directory relative to the repository]. */
const bundles = [...actions.map((name) => [join('actions', name, 'main.ts'), join('actions', name, 'dist')]), [join('cli', 'labforge.ts'), join('cli', 'dist')]];

async function bundleAll(outRoot) {
  for (const [entry, dist] of bundles) {
    const outdir = join(outRoot, dist);
    mkdirSync(outdir, { recursive: true });
    await build({ ...common, entryPoints: [join(root, entry)], outfile: join(outdir, 'index.js'), minify: true });
    writeFileSync(join(outdir, 'package.json'), '{\n  "type": "module"\n}\n');
  }
}

if (check) {
  const tmp = mkdtempSync(join(tmpdir(), 'labforge-check-dist-'));
  try {
    await bundleAll(tmp);
    const stale = [];
    for (const [, dist] of bundles) {
      for (const file of ['index.js', 'package.json']) {
        const committed = join(root, dist, file);
        const fresh = readFileSync(join(tmp, dist, file));
        if (!existsSync(committed) || !readFileSync(committed).equals(fresh)) stale.push(`${dist}/${file}`);
      }
    }
    if (stale.length > 0) {
      console.error(`check-dist: these bundles are out of date with the source:\n  ${stale.join('\n  ')}\nRun 'npm run build' and commit actions/*/dist and cli/dist.`);
      process.exit(1);
    }
    console.log(`check-dist: ${actions.length} action bundles and the CLI bundle match the source`);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
} else {
  if (!benchOnly) {
    await bundleAll(root);
    rmSync(join(root, 'build', 'cli.js'), { force: true });
    rmSync(join(root, 'build', 'cli.js.map'), { force: true });
  }
  // Every bench/*.ts is an entry point (the benchmarks and their runner, run.ts); bench/lib is bundled into them.
  const benchDir = join(root, 'bench');
  const benches = existsSync(benchDir) ? readdirSync(benchDir).filter((f) => f.endsWith('.ts')).map((f) => join(benchDir, f)) : [];
  if (benches.length > 0) {
    await build({ ...common, entryPoints: benches, outdir: join(root, 'build', 'bench'), sourcemap: true });
  }
  const benchCount = benches.filter((f) => !f.endsWith('run.ts')).length;
  console.log(`build: ${benchOnly ? '' : `${actions.length} actions, cli, `}${benchCount} benchmarks${benches.length > benchCount ? ' and their runner' : ''}`);
}
