import * as core from '@actions/core';
import { actionInputs, logInfo, runAction, setOutputs, writeSummaryTable } from '../lib/action-runner.js';
import { mermaidGantt, stepPhases } from '../lib/summary-gantt.js';
import { cleanupWarm, readApplianceWarmOptions, timelineJson, warmImage } from '../lib/vlab-warm.js';
import { keyFileModeWarning } from '../lib/ssh-key-check.js';
import { annotationText } from '../lib/escape.js';

/** Masks a private key in the log: the whole text and each of its base64 lines. */
function maskKey(key: string): void {
  core.setSecret(key);
  for (const line of key.split('\n')) if (line.trim().length > 8 && !line.startsWith('-----')) core.setSecret(line.trim());
}

await runAction('vlab-warm', {
  main: async () => {
    const key = core.getInput('ssh-key');
    if (key.trim() !== '') maskKey(key);
    const passphrase = core.getInput('passphrase');
    if (passphrase !== '') core.setSecret(passphrase);
    const registryCredential = core.getInput('registry-credential');
    if (registryCredential.trim() !== '') {
      core.setSecret(registryCredential);
      core.setSecret(registryCredential.trim());
    }
    const options = await readApplianceWarmOptions(actionInputs);
    const modeWarning = keyFileModeWarning(options.sshKeyPath);
    if (modeWarning) core.warning(annotationText(modeWarning));
    const controller = new AbortController();
    const cancel = (sig: NodeJS.Signals) => controller.abort(new Error(`cancelled by ${sig}`));
    process.once('SIGINT', cancel);
    process.once('SIGTERM', cancel);
    const result = await warmImage(options, {
      log: (line) => logInfo(line),
      signal: controller.signal,
      // Saved as soon as they exist: the post: step kills QEMU and removes the overlay if this step dies.
      onResources: (r) => {
        if (r.qemuPid) core.saveState('qemu-pid', String(r.qemuPid));
        if (r.overlay) core.saveState('overlay', r.overlay);
        if (r.seedDir) core.saveState('seed-dir', r.seedDir);
      },
      // The per-run key of cloud-init-seed: masked before anything could print it.
      onSecret: maskKey,
    });
    setOutputs({ image: result.image ?? '', sbom: result.sbom?.path ?? '', 'warm-seconds': String(result.warmSeconds), timeline: timelineJson(result) });
    await writeSummaryTable(
      `vlab-warm: ${options.attach ? `${options.attach.host}:${options.attach.port}` : result.image} pre-warmed in ${result.warmSeconds} s`,
      Object.entries(result.timeline).map(([step, s]) => [step, `${s} s`]),
      `Lab version ${result.manifest.labVersion}; readiness proven by \`${result.manifest.readiness.command}\` (exit ${result.manifest.readiness.exitCode}) before the marker was written.`,
      mermaidGantt(stepPhases(result.steps), { title: 'Warm timeline' }),
    );
  },
  post: async () => {
    const pid = Number(core.getState('qemu-pid') || '0');
    const overlay = core.getState('overlay');
    const seedDir = core.getState('seed-dir');
    const done = await cleanupWarm({ ...(pid > 0 ? { qemuPid: pid } : {}), ...(overlay ? { overlay } : {}), ...(seedDir ? { seedDir } : {}) });
    logInfo(done.length > 0 ? `vlab-warm cleanup: ${done.join('; ')}` : 'vlab-warm cleanup: nothing left to clean up');
  },
});
