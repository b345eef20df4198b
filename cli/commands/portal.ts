import type { Command } from '../command.js';
import { publishPortal } from '../../actions/lib/download-portal.js';
import { InputError } from '../../actions/lib/inputs.js';
import { printable } from '../../actions/lib/escape.js';
import { CATALOG_KEY } from '../../actions/lib/release-catalog.js';
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
  details: 'The destination must hold a catalog (index.json, written by labforge upload); nothing is created elsewhere.\nExit codes: 0 published, 1 failed, 2 bad input (including a destination without index.json).',
  run: async ({ get, log, print }) => {
    const options = readPortalOptions(get);
    const store = openStore(options);
    // A portal lists the catalog: a destination without one is a wrong destination, not an empty portal to create.
    if (!(await store.exists(CATALOG_KEY))) {
      throw new InputError('destination', `${printable(store.uri(CATALOG_KEY))} does not exist: no release was ever published there`, 'give the destination that labforge upload / upload-artifact published to (it holds index.json)');
    }
    const r = await publishPortal(store, { ...(options.title ? { title: options.title } : {}), ...(options.signedUrlHours > 0 ? { signedUrlHours: options.signedUrlHours } : {}), log });
    print(JSON.stringify({ 'portal-uri': r.htmlUri, 'markdown-uri': r.markdownUri, releases: r.releases }, null, 2));
    return 0;
  },
};
