/** Every labforge subcommand, in the order `labforge --help` lists them. Add new commands here. */
import type { Command } from '../command.js';
import { warmCommand } from './warm.js';
import { pipelineCommand } from './pipeline.js';
import { detectBuildTypeCommand } from './detect-build-type.js';
import { releaseCommand } from './release.js';
import { packOvaCommand } from './pack-ova.js';
import { preflightCommand } from './preflight.js';
import { buildCommand } from './build.js';
import { sshDiagnoseCommand } from './ssh-diagnose.js';
import { uploadCommand } from './upload.js';
import { portalCommand } from './portal.js';
import { pinCommand } from './pin.js';
import { fetchStandardCommand } from './fetch-standard.js';
import { verifyCommand } from './verify.js';
import { doctorCommand } from './doctor.js';

export const commands: Command[] = [detectBuildTypeCommand, releaseCommand, warmCommand, pipelineCommand, packOvaCommand, preflightCommand, doctorCommand, buildCommand, fetchStandardCommand, sshDiagnoseCommand, uploadCommand, portalCommand, pinCommand, verifyCommand];
