import type { Command } from '../command.js';
import { publishPortal } from '../../actions/lib/download-portal.js';
import { openStore } from '../../actions/lib/release-upload.js';
import { readPortalOptions } from '../../actions/lib/upload-options.js';
import { destinationFlags } from './upload.js';

export const portalCommand: Command = {
  name: 'portal',
  summary: 'Regenerate the download portal (index.html, DOWNLOADS.md) at a destination from its index.json.',
  usage: '--destination gs://BUCKET/PREFIX|file:///DIR [flags]',
  flags: {
    ...destinationFlags,
    title: { type: 'string', description: 'page title', default: 'Hedgehog lab appliance downloads' },
  },
  details: 'Exit codes: 0 published, 1 failed, 2 bad input.',
  run: async ({ get, log, print }) => {
    const options = readPortalOptions(get);
    const store = openStore(options);
    const r = await publishPortal(store, { ...(options.title ? { title: options.title } : {}), ...(options.signedUrlHours > 0 ? { signedUrlHours: options.signedUrlHours } : {}), log });
    print(JSON.stringify({ 'portal-uri': r.htmlUri, 'markdown-uri': r.markdownUri, releases: r.releases }, null, 2));
    return 0;
  },
};
