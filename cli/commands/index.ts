/** Every labforge subcommand, in the order `labforge --help` lists them. Add new commands here. */
import type { Command } from '../command.js';
import { detectBuildTypeCommand } from './detect-build-type.js';

export const commands: Command[] = [detectBuildTypeCommand];
