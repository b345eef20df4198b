import type { Command } from '../command.js';
import { decisionOutputs, detectBuildType, readDetectOptions } from '../../actions/lib/build-decision.js';

export const detectBuildTypeCommand: Command = {
  name: 'detect-build-type',
  summary: 'Read the appliance, decide standard vs pre-warmed and the version (same rules as the detect-build-type action); prints JSON.',
  flags: {
    'build-type': { type: 'string', description: 'standard, prewarmed or auto', default: 'auto' },
    version: { type: 'string', description: 'semantic version, overrides event/tag/OVA' },
    ova: { type: 'string', description: 'existing OVA whose OVF property buildType decides' },
    marker: { type: 'string', description: 'guest marker file (/etc/hedgehog-lab/build-type format)' },
    'event-name': { type: 'string', description: 'GitHub event name', default: '$GITHUB_EVENT_NAME' },
    'event-path': { type: 'string', description: 'GitHub event payload JSON', default: '$GITHUB_EVENT_PATH' },
    ref: { type: 'string', description: 'git ref, e.g. refs/tags/v1.4.0-prewarmed', default: '$GITHUB_REF' },
    appliance: { type: 'string', description: 'appliance directory holding appliance.yml', default: 'packer/hedgehog-lab' },
    'runs-on': { type: 'string', description: `runner labels for the build job instead of the manifest's runner-labels: a JSON array such as ["self-hosted","linux","x64","kvm"], or one label such as arc-kvm` },
  },
  details: 'Exit codes: 0 decided, 2 bad input.',
  run: async ({ get, print }) => {
    const decision = await detectBuildType(readDetectOptions(get));
    print(JSON.stringify(decisionOutputs(decision), null, 2));
    return 0;
  },
};
