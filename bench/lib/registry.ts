import { printable } from '../../actions/lib/escape.js';

/**
 * Every benchmark `npm run bench` runs. A benchmark is a file bench/<name>.ts (built to build/bench/<name>.js);
 * it prints its tables as Markdown on stdout (progress on stderr) and accepts `--quick` (fewer sizes or runs,
 * smaller images: the same code path and the same baseline). Its section of docs/BENCHMARKS.md sits between
 * `<!-- bench:<name>:begin -->` and `<!-- bench:<name>:end -->`. test/unit/bench-runner.test.ts fails when a
 * bench file is missing here, and the runner refuses to start when a built one is.
 */
export interface Benchmark {
  /** The file name without `.ts`, the `--only` name and the marker name. */
  name: string;
  /** One line: what it measures against what. */
  what: string;
  /** What `--quick` changes. */
  quick: string;
  /** Needs root (creates users, runs sshd). */
  root?: boolean;
}

/** In the order they run (fastest first). */
export const BENCHMARKS: readonly Benchmark[] = [
  { name: 'ssh-diagnose', what: 'ssh-diagnose time to verdict per cause against a real sshd / odd listeners, target 2 s', quick: '1 run per scenario instead of 5', root: true },
  { name: 'verify', what: 'labforge verify (checksum + every entry against the manifest, one pass) vs sha256sum -c, with peak RSS per OVA size', quick: 'OVAs of 0.25 and 1 GiB instead of 1 and 8 GiB' },
  { name: 'ova-pack', what: 'packOva (stream writer pools 1/2/4, qemu-img writer) vs a bare qemu-img convert and vs convert + sha256sum + tar + sha256sum', quick: 'images of 0.5 and 1 GiB instead of 2 and 8 GiB' },
  { name: 'upload', what: "one-pass hashing vs sha256sum; labforge's parallel upload vs bucket.upload() to the GCS emulator; resume after SIGKILL; a flattened image → published, verified OVA on the capped emulator, overlapped vs pack-then-upload", quick: 'files of 0.25 and 0.5 GiB instead of 1 and 4 GiB, a 0.5 GiB image instead of 2 GiB' },
  { name: 'first-boot', what: 'the pre-warmed pipeline of the demo appliance per phase, then cold first boots of the standard and the pre-warmed image', quick: '1 cold boot of each image instead of 3' },
];

/** The names of the bench files that are benchmarks (not the runner, not bench/lib). */
export function benchFileNames(files: string[], ext: '.ts' | '.js'): string[] {
  return files
    .filter((f) => f.endsWith(ext) && f !== `run${ext}`)
    .map((f) => f.slice(0, -ext.length))
    .sort();
}

/** Bench files that the registry does not know (they would silently not run). */
export function unregistered(names: string[]): string[] {
  const known = new Set(BENCHMARKS.map((b) => b.name));
  return names.filter((n) => !known.has(n));
}

/** The benchmarks `--only` selects (all when none); an unknown name is an error naming the known ones. */
export function selectBenchmarks(only: string[]): Benchmark[] {
  const names = only.flatMap((o) => o.split(',')).map((o) => o.trim()).filter(Boolean);
  if (names.length === 0) return [...BENCHMARKS];
  const unknown = names.filter((n) => !BENCHMARKS.some((b) => b.name === n));
  if (unknown.length > 0) throw new Error(`--only: no benchmark named '${printable(unknown.join("', '"))}' (one of: ${BENCHMARKS.map((b) => b.name).join(', ')})`);
  return BENCHMARKS.filter((b) => names.includes(b.name));
}
