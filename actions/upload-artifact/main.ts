import { actionInputs, logInfo, runAction, setOutputs, writeSummaryTable } from '../lib/action-runner.js';
import { readUploadAppliance, uploadOutputs, uploadRelease } from '../lib/release-upload.js';
import { formatBytes } from '../lib/transfer-progress.js';
import { readUploadOptions } from '../lib/upload-options.js';

await runAction('upload-artifact', {
  main: async () => {
    const options = readUploadOptions(actionInputs);
    const appliance = readUploadAppliance(actionInputs);
    const r = await uploadRelease({ ...options, ...(appliance ? { appliance } : {}), log: (line) => logInfo(line) });
    setOutputs(uploadOutputs(r));
    const rows: [string, string][] = r.files.map((f) => [
      `\`${f.name}\``,
      `${f.uri}<br>${formatBytes(f.size)} · SHA-256 \`${f.sha256}\` · CRC32C \`${f.crc32c}\`<br>` +
        `sent ${formatBytes(f.bytesSent)}${f.bytesReused > 0 ? `, ${formatBytes(f.bytesReused)} resumed from an earlier run` : ''} in ${f.seconds.toFixed(1)} s · [download](${f.url})`,
    ]);
    if (r.sha256Uri) rows.push(['checksum', r.sha256Uri]);
    if (r.metadataUri) rows.push(['metadata', r.metadataUri]);
    if (r.release && options.sourceSha256) rows.push(['built from', `standard OVA SHA-256 \`${options.sourceSha256}\`${options.sourceUri ? ` (${options.sourceUri})` : ''}`]);
    if (r.retention) {
      const gone = r.retention.deleted.map((d) => `v${d.version}`).join(', ') || 'nothing';
      rows.push([r.retention.dryRun ? 'retention (dry run, would delete)' : 'retention (deleted)', gone]);
    }
    if (r.portal) rows.push(['portal', `${r.portal.htmlUri} (${r.portal.releases} releases)`]);
    const title = r.release ? `Published ${r.release.appliance} v${r.release.version} ${r.release.buildType}` : `Published to ${r.destination}`;
    await writeSummaryTable(title, rows);
  },
});
