import { actionInputs, logInfo, runAction, setOutputs, writeSummaryTable } from '../lib/action-runner.js';
import { decisionOutputs, detectBuildType, readDetectOptions } from '../lib/build-decision.js';

await runAction('detect-build-type', {
  main: async () => {
    const decision = await detectBuildType(readDetectOptions(actionInputs));
    const outputs = decisionOutputs(decision);
    setOutputs(outputs);
    logInfo(`appliance: ${decision.appliance} (${decision.applianceDir}); build type: ${decision.buildType} (${decision.reason}); version ${decision.version} from ${decision.versionSource}`);
    logInfo(`runner labels (from the ${decision.runnerLabelsSource === 'input' ? 'runs-on input' : 'manifest'}): ${outputs['runner-labels']}; overwrite published files: ${outputs['overwrite']}`);
    await writeSummaryTable(
      `Build decision: ${decision.appliance} ${decision.buildType} ${decision.version}`,
      Object.entries(outputs).map(([k, v]) => [`\`${k}\``, v]),
    );
  },
});
