#!/usr/bin/env node
// Bundles every action (actions/<name>/main.ts → actions/<name>/dist/index.js), the CLI and the benchmarks.
// `--check` bundles the actions into a temporary directory and fails if the committed dist/ differs.
import { build } from 'esbuild';
import { mkdtempSync, readdirSync, existsSync, readFileSync, writeFileSync, mkdirSync, rmSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { tmpdir } from 'node:os';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const check = process.argv.includes('--check');

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
  // ssh2's optional native addons: without them ssh2 falls back to pure JavaScript.
  external: ['cpu-features', '*.node'],
  logLevel: 'warning',
  legalComments: 'none',
};

const actions = readdirSync(join(root, 'actions'), { withFileTypes: true })
  .filter((d) => d.isDirectory() && existsSync(join(root, 'actions', d.name, 'main.ts')))
  .map((d) => d.name)
  .sort();

async function bundleActions(outRoot) {
  for (const name of actions) {
    const outdir = join(outRoot, name, 'dist');
    mkdirSync(outdir, { recursive: true });
    await build({ ...common, entryPoints: [join(root, 'actions', name, 'main.ts')], outfile: join(outdir, 'index.js'), minify: true });
    writeFileSync(join(outdir, 'package.json'), '{\n  "type": "module"\n}\n');
  }
}

if (check) {
  const tmp = mkdtempSync(join(tmpdir(), 'labforge-check-dist-'));
  try {
    await bundleActions(tmp);
    const stale = [];
    for (const name of actions) {
      for (const file of ['index.js', 'package.json']) {
        const committed = join(root, 'actions', name, 'dist', file);
        const fresh = readFileSync(join(tmp, name, 'dist', file));
        if (!existsSync(committed) || !readFileSync(committed).equals(fresh)) stale.push(`actions/${name}/dist/${file}`);
      }
    }
    if (stale.length > 0) {
      console.error(`check-dist: these bundles are out of date with the source:\n  ${stale.join('\n  ')}\nRun 'npm run build' and commit actions/*/dist.`);
      process.exit(1);
    }
    console.log(`check-dist: ${actions.length} action bundles match the source`);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
} else {
  await bundleActions(join(root, 'actions'));
  const cliEntry = join(root, 'cli', 'labforge.ts');
  if (existsSync(cliEntry)) {
    await build({ ...common, entryPoints: [cliEntry], outfile: join(root, 'build', 'cli.js'), sourcemap: true });
  }
  const benchDir = join(root, 'bench');
  const benches = existsSync(benchDir) ? readdirSync(benchDir).filter((f) => f.endsWith('.ts')).map((f) => join(benchDir, f)) : [];
  if (benches.length > 0) {
    await build({ ...common, entryPoints: benches, outdir: join(root, 'build', 'bench'), sourcemap: true });
  }
  console.log(`build: ${actions.length} actions, cli${benches.length ? `, ${benches.length} benchmarks` : ''}`);
}
