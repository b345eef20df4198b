import type { Command } from '../command.js';
import { formatOvaCheckReport, readVerifyOvaOptions, verifyOva } from '../../actions/lib/ova-check.js';
import { untilTerminated } from '../../actions/lib/termination.js';

export const verifyCommand: Command = {
  name: 'verify',
  summary: 'Check a downloaded OVA in one pass: its .sha256, its structure and manifest, what it is (OVF), its SBOM.',
  usage: 'FILE.ova [--sha256-file F] [--sbom F] [--structure-only] [--json]',
  flags: {
    'sha256-file': { type: 'string', description: 'the checksum file published with the OVA', default: 'FILE.ova.sha256 beside it' },
    sbom: { type: 'string', description: 'the CycloneDX SBOM published with the OVA', default: '<base>.cdx.json beside it, if there' },
    'structure-only': { type: 'boolean', description: 'no checksum file: check the archive and its manifest only (finds damage, not a substituted file)' },
    json: { type: 'boolean', description: 'print the report as JSON instead of text' },
  },
  details: [
    'Example: labforge verify hedgehog-lab-prewarmed-1.4.0.ova   (with hedgehog-lab-prewarmed-1.4.0.ova.sha256 beside it)',
    '',
    'Reads the file once (memory stays flat, whatever its size; progress with rate and ETA on stderr): the whole file',
    'must match its .sha256; the OVF descriptor must come first and the manifest (.mf) right after it or at the end;',
    'every entry must match its SHA256 manifest line and every manifest line must name an entry. The report gives the',
    "build type, version, build date and git SHA the OVF states, and summarizes the SBOM (<base>.cdx.json) beside it,",
    'checked against the SHA-256 the release metadata (<base>.metadata.json) lists for it.',
    'Without a .sha256 (beside it or --sha256-file) nothing is read and the command exits 2: an unchecked download',
    'must not look checked. --structure-only checks the archive anyway and says so in the report.',
    'Provenance of a release built by GitHub Actions: gh attestation verify FILE.ova --repo OWNER/REPO',
    'Exit codes: 0 verified, 1 a mismatch (the line names the entry or file and what differs), 2 bad input.',
  ].join('\n'),
  run: async ({ get, positionals, log, print }) => {
    const options = await readVerifyOvaOptions(get, positionals);
    const report = await untilTerminated((signal) => verifyOva({ ...options, log, signal }), () => new Error('cancelled'));
    print(get('json') === 'true' ? JSON.stringify(report, null, 2) : formatOvaCheckReport(report));
    return 0;
  },
};
