import { actionInputs, logInfo, runAction, setOutputs, writeSummaryTable } from '../lib/action-runner.js';
import { readUploadAppliance, uploadOutputs, uploadRelease } from '../lib/release-upload.js';
import { formatBytes, formatThroughput } from '../lib/transfer-progress.js';
import { readUploadOptions } from '../lib/upload-options.js';

await runAction('upload-artifact', {
  main: async () => {
    const options = readUploadOptions(actionInputs);
    const appliance = readUploadAppliance(actionInputs);
    const r = await uploadRelease({ ...options, ...(appliance ? { appliance } : {}), log: (line) => logInfo(line) });
    setOutputs(uploadOutputs(r));
    const rows: [string, string][] = r.files.map((f) => [
      `\`${f.name}\``,
      `${f.uri}\n${formatBytes(f.size)} · SHA-256 \`${f.sha256}\` · CRC32C \`${f.crc32c}\`\n` +
        `sent ${formatBytes(f.bytesSent)}${f.bytesReused > 0 ? `, ${formatBytes(f.bytesReused)} resumed from an earlier run` : ''} in ${f.seconds.toFixed(1)} s · [download](${f.url})`,
    ]);
    // Files go one after the other: the upload phase is the sum of their times.
    rows.push(['throughput', formatThroughput(r.files.reduce((n, f) => n + f.bytesSent, 0), r.files.reduce((n, f) => n + f.seconds, 0))]);
    if (r.sha256Uri) rows.push(['checksum', r.sha256Uri]);
    if (r.metadataUri) rows.push(['metadata', r.metadataUri]);
    if (r.release?.sbom) rows.push(['SBOM', `${r.sbomUri} (${r.release.sbom.format}, ${r.release.sbom.components} components, SHA-256 \`${r.release.sbom.sha256}\`)`]);
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
