import { actionInputs, logInfo, runAction, setOutputs, writeSummaryTable } from '../lib/action-runner.js';
import { readUploadAppliance, uploadOutputs, uploadRelease, type UploadReleaseResult } from '../lib/release-upload.js';
import { formatBytes, formatThroughput } from '../lib/transfer-progress.js';
import { packSummaryRows, publishWhilePacking } from '../lib/upload-pack.js';
import { readUploadInputs } from '../lib/upload-pack-options.js';
import { untilTerminated } from '../lib/termination.js';

await runAction('upload-artifact', {
  main: async () => {
    const appliance = readUploadAppliance(actionInputs);
    const { upload: options, pack } = await readUploadInputs(actionInputs, appliance);
    const log = (line: string) => logInfo(line);
    let r: UploadReleaseResult;
    let packRows: [string, string][] = [];
    if (pack) {
      // With image: pack the OVA at path and publish it while it is packed. A cancelled job stops the packing
      // (and the upload, which then publishes nothing).
      const packed = await untilTerminated((signal) => publishWhilePacking({ upload: options, pack, signal, log }));
      r = packed.publish;
      packRows = packSummaryRows(packed, pack);
    } else {
      r = await uploadRelease({ ...options, ...(appliance ? { appliance } : {}), log });
    }
    setOutputs(uploadOutputs(r));
    const rows: [string, string][] = r.files.map((f) => [
      `\`${f.name}\``,
      `${f.uri}\n${formatBytes(f.size)} · SHA-256 \`${f.sha256}\` · CRC32C \`${f.crc32c}\`\n` +
        `sent ${formatBytes(f.bytesSent)}${f.bytesReused > 0 ? `, ${formatBytes(f.bytesReused)} resumed from an earlier run` : ''} in ${f.seconds.toFixed(1)} s · [download](${f.url})`,
    ]);
    rows.push(...packRows);
    // Files go one after the other: the upload phase is the sum of their times. With image the OVA's time
    // includes its packing (its body went up as it was compressed), so the row says so.
    rows.push([pack ? 'throughput (packing included)' : 'throughput', formatThroughput(r.files.reduce((n, f) => n + f.bytesSent, 0), r.files.reduce((n, f) => n + f.seconds, 0))]);
    if (r.sha256Uri) rows.push(['checksum', r.sha256Uri]);
    if (r.metadataUri) rows.push(['metadata', r.metadataUri]);
    if (r.release?.sbom) rows.push(['SBOM', `${r.sbomUri} (${r.release.sbom.format}, ${r.release.sbom.components} components, SHA-256 \`${r.release.sbom.sha256}\`)`]);
    if (r.release && options.sourceSha256) rows.push(['built from', `standard OVA SHA-256 \`${options.sourceSha256}\`${options.sourceUri ? ` (${options.sourceUri})` : ''}`]);
    if (r.retention) {
      const gone = r.retention.deleted.map((d) => `v${d.version}`).join(', ') || 'nothing';
      rows.push([r.retention.dryRun ? 'retention (dry run, would delete)' : 'retention (deleted)', gone]);
    }
    if (r.portal) rows.push(['portal', `${r.portal.htmlUri} (${r.portal.releases} releases)`]);
    const title = r.release ? `Published ${r.release.appliance} v${r.release.version} ${r.release.buildType}${pack ? ' (packed and published at once)' : ''}` : `Published to ${r.destination}`;
    await writeSummaryTable(title, rows);
  },
});
