import type { Command } from '../command.js';
import { writeSummaryTable } from '../../actions/lib/action-runner.js';
import { formatPipelineTable, pipelineSummaryRows, readPipelineOptions, runPipeline } from '../../actions/lib/pipeline.js';
import { mermaidGantt, stepPhases, timedPhases } from '../../actions/lib/summary-gantt.js';

export const pipelineCommand: Command = {
  name: 'pipeline',
  summary: 'Run the whole release flow on local defaults: detect, Packer build, warm (pre-warmed), pack OVA, upload to file://<out>/bucket, portal.',
  flags: {
    appliance: { type: 'string', description: 'appliance directory with appliance.yml', default: 'packer/demo-lab' },
    profile: { type: 'string', description: "the appliance's resource profile", default: 'the manifest default' },
    cpus: { type: 'string', description: "vCPUs (overrides the profile's)" },
    'memory-mib': { type: 'string', description: "memory in MiB (overrides the profile's)" },
    'disk-gib': { type: 'string', description: "disk in GiB (overrides the profile's)" },
    'build-type': { type: 'string', description: 'standard or prewarmed', default: 'standard' },
    version: { type: 'string', description: 'semantic version of the build', default: '0.1.0' },
    out: { type: 'string', description: 'output directory (work files, the OVA, bucket/)', default: './out' },
    overwrite: { type: 'string', description: 'replace a release of the same version in the local bucket', default: 'true' },
    'overlap-upload': { type: 'string', description: 'publish the OVA while it is packed (true) or pack, then upload (false)', default: 'true' },
    'from-standard': { type: 'string', description: "pre-warmed: auto warms the bucket's published standard OVA of the version when there is one (verified, converted back to qcow2) instead of running Packer; never always runs Packer", default: 'auto' },
  },
  details: [
    'The appliance is the demo appliance (packer/demo-lab: Debian, cloud-init, a simulated lab; its base image',
    'is built without root and cached) unless --appliance names another; the accelerator is KVM when /dev/kvm',
    'is usable and TCG otherwise. The same modules as the actions do the work, in build.yml\'s order.',
    'The login user\'s console password is read from $LABFORGE_CONSOLE_PASSWORD, and the registry credential of an',
    'appliance whose lab downloads from a registry (USER:TOKEN) from $LABFORGE_REGISTRY_CREDENTIAL (never flags).',
    'A pre-warmed build whose bucket already holds the standard release of that version (from an earlier',
    '--build-type standard run) warms that published OVA: the build phase then reads "from published standard <uri>".',
    'Ends with a table of phase timings and where the outputs are. Exit codes: 0 ok, 1 a phase failed, 2 bad input.',
  ].join('\n'),
  run: async ({ get, log, print }) => {
    const options = readPipelineOptions(get);
    const controller = new AbortController();
    const onSignal = (sig: NodeJS.Signals) => {
      log(`labforge pipeline: ${sig} received, stopping and cleaning up`);
      controller.abort(new Error(`cancelled by ${sig}`));
    };
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
    try {
      log(`labforge pipeline: ${options.buildType} ${options.version} of ${options.appliance} → ${options.outDir} (${options.accelerator})`);
      const result = await runPipeline({ ...options, log, signal: controller.signal });
      print(formatPipelineTable(result));
      // In a workflow step the run also gets a job summary: the phases and their timeline (the warm's steps too).
      if (process.env.GITHUB_STEP_SUMMARY) {
        const chart = mermaidGantt([...timedPhases(result.phases, 'pipeline'), ...(result.warm ? stepPhases(result.warm.steps, 'warm') : [])], { title: 'Pipeline timeline' });
        await writeSummaryTable(`labforge pipeline: ${result.appliance.name} ${result.decision.buildType} ${result.decision.version} in ${Math.round(result.totalSeconds)} s`, pipelineSummaryRows(result), undefined, chart).catch((e: Error) =>
          log(`labforge pipeline: note: no job summary written (${e.message})`),
        );
      }
      return 0;
    } finally {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    }
  },
};
