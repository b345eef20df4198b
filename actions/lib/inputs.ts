/**
 * Typed, validated inputs shared by the actions and the CLI.
 *
 * Both front ends hand the same kebab-case names to a lib module through an {@link InputGetter}: an action
 * passes `core.getInput`, the CLI passes its parsed `--flags`. Validation therefore lives in one place and an
 * invalid value reads the same in a workflow log and on a terminal.
 */
import { statSync, type Stats } from 'node:fs';
import { dirname, resolve } from 'node:path';
import semver from 'semver';
import { printable } from './escape.js';

/** Returns the raw value of an input, or '' when it was not given. */
export type InputGetter = (name: string) => string;

/** A bad input: which input, what is wrong with it, and what to do about it. */
export class InputError extends Error {
  constructor(
    readonly input: string,
    readonly problem: string,
    readonly fix: string,
  ) {
    super(`${input}: ${problem} (${fix})`);
    this.name = 'InputError';
  }
}

/** Builds an {@link InputGetter} from a plain record (CLI flags, tests). Missing keys read as ''. */
export function inputsFrom(values: Record<string, string | boolean | number | undefined>): InputGetter {
  return (name) => {
    const v = values[name];
    return v === undefined ? '' : String(v).trim();
  };
}

/** Reads an optional string; '' becomes `fallback`. */
export function readString(get: InputGetter, name: string, fallback = ''): string {
  const v = get(name).trim();
  return v === '' ? fallback : v;
}

/** Reads a required string. */
export function readRequired(get: InputGetter, name: string, fix = `set the '${name}' input`): string {
  const v = get(name).trim();
  if (v === '') throw new InputError(name, 'is required but empty', fix);
  return v;
}

/**
 * Checks a name-like value — a user, host, version, tag, label, appliance or file name: one line of
 * printable text. A line break, TAB, escape or any other control character is an {@link InputError} naming
 * `input`, so such a value can never split a log line or an annotation.
 */
export function checkName(value: string, input: string, what = 'a name'): string {
  // eslint-disable-next-line no-control-regex
  const bad = /[\x00-\x1f\x7f-\x9f\u2028\u2029]/.exec(value);
  if (bad) {
    // printable() keeps a TAB as it is: name it, so the message never shows an invisible character.
    const which = bad[0] === '\n' || bad[0] === '\r' || bad[0] === '\u2028' || bad[0] === '\u2029' ? 'a line break' : bad[0] === '\t' ? 'a TAB' : `the control character ${printable(bad[0])}`;
    throw new InputError(input, `'${printable(value, 80)}' contains ${which}`, `give ${what} on one line, without control characters`);
  }
  return value;
}

/** Reads an optional name-like input (see {@link checkName}); '' becomes `fallback`. */
export function readName(get: InputGetter, name: string, fallback = '', what?: string): string {
  return checkName(readString(get, name, fallback), name, what);
}

/** Reads a boolean in the YAML 1.2 core-schema spellings that @actions/core accepts. */
export function readBool(get: InputGetter, name: string, fallback: boolean): boolean {
  const v = get(name).trim();
  if (v === '') return fallback;
  if (['true', 'True', 'TRUE', 'yes', '1'].includes(v)) return true;
  if (['false', 'False', 'FALSE', 'no', '0'].includes(v)) return false;
  throw new InputError(name, `'${printable(v, 80)}' is not a boolean`, 'use true or false');
}

/** Reads an integer within [min, max]. */
export function readInt(get: InputGetter, name: string, fallback: number, range: { min?: number; max?: number } = {}): number {
  const v = get(name).trim();
  if (v === '') return fallback;
  if (!/^-?\d+$/.test(v)) throw new InputError(name, `'${printable(v, 80)}' is not a whole number`, `give a number such as ${fallback}`);
  const n = Number(v);
  const { min = Number.MIN_SAFE_INTEGER, max = Number.MAX_SAFE_INTEGER } = range;
  if (n < min || n > max) throw new InputError(name, `${n} is out of range`, `use a value from ${min} to ${max}`);
  return n;
}

/** Reads one of a fixed set of lower-case words. */
export function readChoice<T extends string>(get: InputGetter, name: string, choices: readonly T[], fallback: T): T {
  const v = get(name).trim();
  if (v === '') return fallback;
  if ((choices as readonly string[]).includes(v)) return v as T;
  throw new InputError(name, `'${printable(v, 80)}' is not one of ${choices.join(', ')}`, `use one of: ${choices.join(', ')}`);
}

/** Reads a semantic version without a leading `v` (a leading `v` is tolerated and stripped). */
export function readVersion(get: InputGetter, name: string): string | undefined {
  const v = get(name).trim();
  if (v === '') return undefined;
  return checkVersion(v, name);
}

/** Validates a version string; returns it without a leading `v`. */
export function checkVersion(raw: string, input: string): string {
  const v = raw.replace(/^v(?=\d)/, '');
  if (semver.valid(v) === null) {
    throw new InputError(input, `'${printable(raw, 80)}' is not a semantic version`, 'use MAJOR.MINOR.PATCH such as 1.4.0 or 1.4.0-rc.1');
  }
  return v;
}

/** Splits a multi-line or comma-separated list input into trimmed, non-empty items. */
export function readList(get: InputGetter, name: string): string[] {
  return get(name)
    .split(/[\n,]/)
    .map((s) => s.trim())
    .filter((s) => s !== '');
}

/** `stat` that answers undefined for a path that does not exist (or whose parent is a file: ENOTDIR). */
function statOrUndefined(path: string): Stats | undefined {
  try {
    return statSync(path);
  } catch {
    return undefined;
  }
}

/** The nearest existing ancestor of `path` must be a directory: a file on the way is ENOTDIR later. */
function checkParents(path: string, input: string): void {
  for (let dir = dirname(resolve(path)); ; dir = dirname(dir)) {
    const st = statOrUndefined(dir);
    if (st) {
      if (!st.isDirectory()) throw new InputError(input, `${printable(dir, 200)} is a file, expected a directory`, `give a path whose parent directories are directories, or move ${printable(dir, 200)} away`);
      return;
    }
    if (dirname(dir) === dir) return;
  }
}

/**
 * Checks a directory a command writes into (it may not exist yet and is then created): neither it nor any
 * parent on the way may be a file. Called before any work, so ENOTDIR/EEXIST never surface later.
 */
export function checkOutputDirectory(path: string, input: string): string {
  const st = statOrUndefined(path);
  if (st && !st.isDirectory()) throw new InputError(input, `${printable(path, 200)} is a file, expected a directory`, 'give a directory (it is created when missing), or move the file away');
  if (!st) checkParents(path, input);
  return path;
}

/** Checks a file a command will write: not an existing directory, and no parent on the way is a file. */
export function checkOutputFile(path: string, input: string): string {
  const st = statOrUndefined(path);
  if (st?.isDirectory()) throw new InputError(input, `${printable(path, 200)} is a directory, expected a file`, 'give the path of the file to write, not a directory');
  checkParents(path, input);
  return path;
}

/**
 * Checks a file a command reads: it exists, is a regular file (not a directory) and, with `nonEmpty`,
 * holds at least one byte. Returns its stats.
 */
export function checkInputFile(path: string, input: string, opts: { nonEmpty?: boolean; what?: string } = {}): Stats {
  const what = opts.what ?? 'the file';
  const st = statOrUndefined(path);
  if (!st) throw new InputError(input, `${printable(path, 200)} does not exist`, `give the path of ${what}`);
  if (st.isDirectory()) throw new InputError(input, `${printable(path, 200)} is a directory, expected a file`, `give the path of ${what}`);
  if (!st.isFile()) throw new InputError(input, `${printable(path, 200)} is not a regular file`, `give the path of ${what}`);
  if (opts.nonEmpty && st.size === 0) throw new InputError(input, `${printable(path, 200)} is empty (0 bytes)`, `give ${what}; this file holds nothing`);
  return st;
}
