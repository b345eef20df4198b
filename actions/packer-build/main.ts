import * as core from '@actions/core';
import * as cache from '@actions/cache';
import { actionInputs, logGroup, logInfo, runAction, setOutputs, writeSummaryTable } from '../lib/action-runner.js';
import { buildOutputs, buildSummaryRows, cleanupLeftovers, readPackerBuildOptions, runPackerBuild, PackerBuildError } from '../lib/packer-build.js';
import type { PluginCacheStore } from '../lib/packer-plugin-cache.js';
import { formatDiagnosis } from '../lib/ssh-diagnose.js';
import { mermaidGantt, timedPhases } from '../lib/summary-gantt.js';

/** @actions/cache as the plugin cache, when the runner offers the cache service. */
function actionsCacheStore(): PluginCacheStore | undefined {
  if (!cache.isFeatureAvailable()) return undefined;
  return {
    restore: (path, key, restoreKeys) => cache.restoreCache([path], key, restoreKeys),
    save: async (path, key) => {
      await cache.saveCache([path], key);
    },
  };
}

await runAction('packer-build', {
  main: async () => {
    for (const secret of [core.getInput('github-token'), core.getInput('ssh-password'), core.getInput('console-password'), core.getInput('registry-credential')]) if (secret) core.setSecret(secret);
    const options = readPackerBuildOptions(actionInputs);
    const controller = new AbortController();
    for (const sig of ['SIGINT', 'SIGTERM'] as const) process.once(sig, () => controller.abort());
    try {
      const result = await runPackerBuild(options, {
        reporter: { line: (l) => logInfo(l), startGroup: (g) => logGroup(g), endGroup: () => core.endGroup() },
        signal: controller.signal,
        pluginCacheStore: options.pluginCache ? actionsCacheStore() : undefined,
        onLeftovers: (left) => {
          if (left.pgid) core.saveState('packer-pgid', String(left.pgid));
          if (left.workDir) core.saveState('work-dir', left.workDir);
        },
      });
      setOutputs(buildOutputs(result));
      const watchdog = result.watchdog ? `\n\n<details><summary>SSH watchdog: ${result.watchdog.cause}</summary>\n\n\`\`\`\n${formatDiagnosis(result.watchdog)}\`\`\`\n</details>\n` : '';
      const chart = mermaidGantt(timedPhases(result.phases), { title: 'Phase timeline' });
      await writeSummaryTable(`Packer build: ${options.buildType} ${options.version} in ${Math.round(result.durationSeconds)} s`, buildSummaryRows(result), watchdog || undefined, chart);
    } catch (e) {
      if (e instanceof PackerBuildError && e.buildLog) core.setOutput('build-log', e.buildLog);
      throw e;
    }
  },
  post: async () => {
    const pgid = Number(core.getState('packer-pgid')) || undefined;
    const workDir = core.getState('work-dir') || undefined;
    for (const line of await cleanupLeftovers({ pgid, workDir })) logInfo(`post: ${line}`);
  },
});
