import * as core from '@actions/core';
import { actionInputs, annotateError, logInfo, runAction, setOutputs } from '../lib/action-runner.js';
import { readBool } from '../lib/inputs.js';
import { diagnoseSecrets, diagnoseSsh, diagnosisMarkdown, diagnosisOutputs, formatDiagnosis, readSshDiagnoseOptions } from '../lib/ssh-diagnose.js';

/** Masks each secret line in everything the runner logs from here on. */
function maskSecrets(secrets: string[]): void {
  for (const s of secrets) if (!s.includes('\n')) core.setSecret(s);
}

await runAction('ssh-diagnose', {
  main: async () => {
    // Mask before anything (even an input error) can be logged.
    maskSecrets(diagnoseSecrets({ password: core.getInput('password'), passphrase: core.getInput('passphrase'), privateKey: core.getInput('private-key') }));
    const failOnError = readBool(actionInputs, 'fail-on-error', true);
    const options = readSshDiagnoseOptions(actionInputs);
    maskSecrets(diagnoseSecrets(options)); // also the key read from private-key-path
    const diagnosis = await diagnoseSsh({ ...options, onProgress: (line) => logInfo(line) });
    setOutputs(diagnosisOutputs(diagnosis));
    logInfo(formatDiagnosis(diagnosis));
    await core.summary.addRaw(diagnosisMarkdown(diagnosis)).write();
    if (!diagnosis.ok && failOnError) {
      annotateError(`${diagnosis.cause}: ${diagnosis.title}. ${diagnosis.detail}`, 'ssh-diagnose');
      process.exitCode = core.ExitCode.Failure;
    }
  },
});
