/** `labforge`: the actions' operations for local use and debugging. */
import { printable } from '../actions/lib/escape.js';
import { commandNames, findCommand, runCommand } from './command.js';
import { commands } from './commands/index.js';

function mainHelp(): string {
  const width = Math.max(...commands.map((c) => commandNames(c).length)) + 2;
  return [
    'labforge: build standard and pre-warmed lab appliances with Packer and QEMU/KVM.',
    '',
    'Usage: labforge <command> [flags]',
    '',
    'Commands:',
    ...commands.map((c) => `  ${commandNames(c).padEnd(width)}${c.summary}`),
    '',
    "Run 'labforge <command> --help' for a command's flags.",
    '',
  ].join('\n');
}

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(mainHelp());
    return name === undefined ? 2 : 0;
  }
  const cmd = findCommand(commands, name);
  if (!cmd) {
    process.stderr.write(`labforge: unknown command '${printable(name, 80)}'\n\n${mainHelp()}`);
    return 2;
  }
  return runCommand(cmd, rest, name);
}

process.exitCode = await main(process.argv.slice(2));
