/**
 * The shape of a `labforge` subcommand. A command's flags carry the same kebab-case names as its action's
 * inputs, so both front ends validate through the same lib function (see actions/lib/inputs.ts).
 */
import { parseArgs } from 'node:util';
import { logText, printable } from '../actions/lib/escape.js';
import { InputError, inputsFrom, type InputGetter } from '../actions/lib/inputs.js';

export interface FlagSpec {
  /** `string` takes a value (`--name VALUE` or `--name=VALUE`); `boolean` is a switch. */
  type: 'string' | 'boolean';
  description: string;
  /** Shown in help; the lib applies defaults. */
  default?: string;
  multiple?: boolean;
}

export interface CommandContext {
  /** Flags as an input getter (missing → ''). */
  get: InputGetter;
  /** Positional arguments. */
  positionals: string[];
  /**
   * Writes a line for the person at the terminal (stderr, so stdout stays machine-readable), escaped line by
   * line ({@link logText}): no terminal escape, and no workflow command when the CLI runs in a workflow step.
   */
  log: (line: string) => void;
  /** Prints the command's result on stdout, escaped the same way (JSON stays JSON with the same value). */
  print: (text: string) => void;
}

export interface Command {
  /** The action's name (a command that mirrors an action carries its name, e.g. `packer-build`). */
  name: string;
  /** Other names that run the same command (the short ones: `build`, `warm`, `upload`). */
  aliases?: string[];
  summary: string;
  /** Extra help text after the flags (examples, exit codes). */
  details?: string;
  usage?: string;
  flags: Record<string, FlagSpec>;
  /** Step outputs the command writes to $GITHUB_OUTPUT when given --github-output (checked against workflows). */
  githubOutputs?: string[];
  /** Returns the exit code: 0 success, 1 the operation failed. Throw InputError for bad input (exit 2). */
  run: (ctx: CommandContext) => Promise<number>;
}

/** Bad command-line usage: unknown flag, missing value, unknown command. Exit code 2. */
export class UsageError extends Error {}

/** The command called `name` (its own name or an alias). */
export function findCommand(commands: readonly Command[], name: string): Command | undefined {
  return commands.find((c) => c.name === name || (c.aliases ?? []).includes(name));
}

/** `packer-build (alias: build)`, or the name alone. */
export const commandNames = (cmd: Command): string => (cmd.aliases?.length ? `${cmd.name} (alias: ${cmd.aliases.join(', ')})` : cmd.name);

export function commandHelp(cmd: Command): string {
  const lines = [`labforge ${cmd.name}${cmd.usage ? ` ${cmd.usage}` : ' [flags]'}`, ...(cmd.aliases?.length ? [`(alias: labforge ${cmd.aliases.join(', labforge ')})`] : []), '', cmd.summary, ''];
  const entries = Object.entries(cmd.flags);
  if (entries.length > 0) lines.push('Flags:');
  for (const [name, spec] of entries) {
    const flag = spec.type === 'string' ? `--${name} VALUE` : `--${name}`;
    lines.push(`  ${flag.padEnd(30)} ${spec.description}${spec.default !== undefined ? ` (default: ${spec.default})` : ''}`);
  }
  lines.push(`  ${'--help'.padEnd(30)} show this help`);
  if (cmd.details) lines.push('', cmd.details.trimEnd());
  return lines.join('\n') + '\n';
}

/**
 * Checks argv against the command's flags before parseArgs sees it, so every usage mistake reads as one line
 * naming the flag: an unknown option, a switch given a value, a flag that takes a value but is followed by
 * another `--option` (or nothing). A negative number after a flag that takes a value (`--size -5`) is passed
 * on as that flag's value, so the lib's range check answers it rather than parseArgs' "ambiguous".
 */
function normalizeArgv(options: Record<string, { type: 'string' | 'boolean' }>, argv: string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--') {
      out.push(...argv.slice(i));
      break;
    }
    if (arg === '-h') {
      out.push('--help');
      continue;
    }
    if (!arg.startsWith('-') || arg === '-') {
      out.push(arg);
      continue;
    }
    if (!arg.startsWith('--')) throw new UsageError(`unknown option ${printable(arg, 80)}`);
    const eq = arg.indexOf('=');
    const name = eq === -1 ? arg.slice(2) : arg.slice(2, eq);
    const spec = Object.hasOwn(options, name) ? options[name] : undefined;
    if (!spec) throw new UsageError(`unknown option --${printable(name, 80)}`);
    if (spec.type === 'boolean') {
      if (eq !== -1) throw new UsageError(`option --${name} is a switch and takes no value (write --${name} alone)`);
      out.push(arg);
      continue;
    }
    if (eq !== -1) {
      out.push(arg);
      continue;
    }
    const next = argv[i + 1];
    if (next === undefined) throw new UsageError(`option --${name} needs a value (write --${name} VALUE)`);
    if (next.startsWith('-') && !/^-\d|^-\.\d/.test(next) && next !== '-') {
      throw new UsageError(`option --${name} needs a value but is followed by the option ${printable(next.split('=')[0], 80)} (write --${name}=VALUE if the value really starts with '-')`);
    }
    out.push(`--${name}=${next}`);
    i++;
  }
  return out;
}

/** Parses argv for a command into a {@link CommandContext}. */
export function parseCommandArgs(cmd: Command, argv: string[]): { get: InputGetter; positionals: string[]; help: boolean } {
  const options: Record<string, { type: 'string' | 'boolean'; multiple?: boolean }> = { help: { type: 'boolean' } };
  for (const [name, spec] of Object.entries(cmd.flags)) options[name] = spec.multiple ? { type: spec.type, multiple: true } : { type: spec.type };
  let parsed;
  try {
    parsed = parseArgs({ args: normalizeArgv(options, argv), options, allowPositionals: true, strict: true });
  } catch (e) {
    if (e instanceof UsageError) throw e;
    throw new UsageError((e as Error).message.replace(/^TypeError \[[A-Z_]+\]: /, ''));
  }
  const values: Record<string, string | undefined> = {};
  for (const [k, v] of Object.entries(parsed.values)) {
    values[k] = Array.isArray(v) ? v.join('\n') : v === undefined ? undefined : String(v);
  }
  return { get: inputsFrom(values), positionals: parsed.positionals, help: parsed.values['help'] === true };
}

/**
 * Runs a command with argv; maps errors to exit codes (2 for bad input, 1 for failure). `invokedAs` is the
 * name the user typed (an alias or the name): error lines repeat it.
 */
export async function runCommand(cmd: Command, argv: string[], invokedAs: string = cmd.name): Promise<number> {
  const name = invokedAs;
  try {
    const { get, positionals, help } = parseCommandArgs(cmd, argv);
    if (help) {
      process.stdout.write(commandHelp(cmd));
      return 0;
    }
    return await cmd.run({
      get,
      positionals,
      log: (line) => process.stderr.write(`${logText(line)}\n`),
      print: (text) => process.stdout.write(logText(text.endsWith('\n') ? text : `${text}\n`)),
    });
  } catch (e) {
    if (e instanceof UsageError) {
      process.stderr.write(`labforge ${name}: ${printable(e.message, 1000)} (see labforge ${name} --help)\n`);
      return 2;
    }
    if (e instanceof InputError) {
      process.stderr.write(`labforge ${name}: ${logText(e.message)}\n`);
      return 2;
    }
    process.stderr.write(`labforge ${name}: ${logText((e as Error).message ?? String(e))}\n`);
    if (process.env.LABFORGE_DEBUG) process.stderr.write(`${logText(String((e as Error).stack))}\n`);
    return 1;
  }
}
