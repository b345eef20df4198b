/**
 * upload-artifact's inputs for publishing an OVA while it is being packed (issue 16): `image` (the disk to
 * pack), `appliance-dir` (its appliance.yml: the OVF's OS and resource profile) and `profile`; `path` is then
 * the one OVA file to write. Everything is checked — with the validators pack-ova uses — before anything
 * slow starts: the disk with `qemu-img info` (metadata only), the manifest read, the profile chosen, the
 * output file's place on disk. Without `image` the upload reads its inputs as before (upload-options.ts).
 */
import { accessSync, constants as fsConstants, lstatSync, statSync, type Stats } from 'node:fs';
import { basename, dirname, resolve } from 'node:path';
import { chooseResources, loadAppliance, type Appliance, type ResourceChoice } from './appliance.js';
import { printable } from './escape.js';
import { InputError, checkInputFile, checkName, checkOutputFile, readList, readString, type InputGetter } from './inputs.js';
import { checkDiskImage, readImageInfo } from './ova-pack.js';
import { readOvfDescriptor } from './ova-read.js';
import { readUploadOptions, type UploadOptions } from './upload-options.js';

/** What to pack while the upload publishes it. */
export interface UploadPackOptions {
  /** The disk image (absolute): qcow2 or anything `qemu-img` reads. */
  image: string;
  /** The OVA to write (absolute): `path`. Its `.sha256` goes beside it. */
  out: string;
  /** The appliance whose manifest describes the OVF (its name, OS and resources). */
  appliance: Appliance;
  /** The resource profile the OVF declares. */
  resources: ResourceChoice;
}

/** The upload's options, and the packing when `image` is given. */
export interface UploadInputs {
  upload: UploadOptions;
  pack?: UploadPackOptions;
}

const IMAGE_WHAT = "the disk image to pack: a qcow2 such as vlab-warm's or packer-build's image output";
const PATH_FIX = 'with image, give the one OVA file to write, e.g. output/demo-lab-standard-1.0.0.ova';

/**
 * Reads every upload-artifact input. With `image`: `path` must be exactly one file name ending in .ova in an
 * existing directory (an existing file there only with overwrite: true), `version` and `build-type` are
 * required (the OVA's identity), `appliance-dir` is required and `profile` must name one of its profiles;
 * the image must be a disk qemu-img reads. `appliance-dir` or `profile` without `image` is refused. Throws an
 * InputError naming the input.
 */
export async function readUploadInputs(get: InputGetter, applianceName?: string): Promise<UploadInputs> {
  const image = readString(get, 'image');
  const applianceDir = readString(get, 'appliance-dir');
  const profile = readString(get, 'profile');
  if (image === '') {
    if (applianceDir !== '') throw new InputError('appliance-dir', 'is set without image', 'give image (the disk to pack into the OVA at path) too, or leave appliance-dir empty to publish a finished OVA');
    if (profile !== '') throw new InputError('profile', 'is set without image', 'give image and appliance-dir too (the profile names resources in appliance.yml), or leave profile empty');
    return { upload: readUploadOptions(get) };
  }
  checkName(image, 'image', IMAGE_WHAT);
  const paths = readList(get, 'path');
  if (paths.length === 0) throw new InputError('path', 'is required but empty', PATH_FIX);
  for (const input of ['version', 'build-type']) {
    if (readString(get, input) === '') throw new InputError(input, 'is required with image', "give version and build-type: they are the packed OVA's identity (OVF properties, release path)");
  }
  const upload = readUploadOptions(get);
  if (upload.allowNonOva) throw new InputError('allow-non-ova', 'is set with image', 'drop it: the file packed from image is an OVA');
  const out = checkOvaPath(paths, upload.overwrite);

  // The image: a regular, non-empty file that qemu-img reads as a disk (not the OVA to write, not an OVA).
  const imageStat = checkInputFile(image, 'image', { nonEmpty: true, what: IMAGE_WHAT });
  if (resolve(image) === out) throw new InputError('path', `${printable(paths[0]!, 200)} is the image itself`, 'give another file name for the OVA to write');
  const info = await readImageInfo(image).catch((e: Error) => {
    if (/^cannot run /.test(e.message)) throw e;
    throw new InputError('image', `${printable(image, 200)} is not a disk image qemu-img can read (${printable(e.message, 300)})`, `give ${IMAGE_WHAT}`);
  });
  checkDiskImage(printable(image, 200), info, imageStat.size);
  if (info.format === 'raw' && (await isOva(image))) {
    throw new InputError('image', `${printable(image, 200)} is an OVA, not a disk image`, 'give the disk image to pack; to publish a finished OVA give it as path and leave image empty');
  }

  // The appliance: its manifest and the chosen profile (what the OVF declares).
  if (applianceDir === '') throw new InputError('appliance-dir', 'is required with image', 'give the directory holding appliance.yml (e.g. packer/demo-lab): the OVF declares its OS and resources');
  checkName(applianceDir, 'appliance-dir', 'the appliance directory');
  if (statOrUndefined(applianceDir)?.isFile() && !/\.ya?ml$/.test(applianceDir)) throw new InputError('appliance-dir', `${printable(applianceDir, 200)} is a file, expected a directory`, 'give the directory holding appliance.yml, e.g. packer/demo-lab');
  const appliance = await loadAppliance(applianceDir, 'appliance-dir');
  if (profile !== '') checkName(profile, 'profile', 'a resource profile name from appliance.yml');
  const resources = chooseResources(appliance, profile !== '' ? { profile } : {});
  if (applianceName !== undefined && applianceName !== appliance.name) {
    throw new InputError('appliance', `'${applianceName}' contradicts appliance-dir, whose appliance.yml names '${appliance.name}'`, 'leave appliance empty: with image the OVA is named and published as the appliance of appliance-dir');
  }
  return { upload, pack: { image: resolve(image), out, appliance, resources } };
}

/** `path` with `image`: one OVA file to write, in an existing directory; returns it absolute. */
function checkOvaPath(paths: string[], overwrite: boolean): string {
  if (paths.length > 1) throw new InputError('path', `names ${paths.length} files (${paths.slice(0, 3).map((p) => `'${printable(p, 80)}'`).join(', ')})`, PATH_FIX);
  const path = checkName(paths[0]!, 'path', 'the OVA file to write');
  if (/[*?[\]{}!]/.test(path)) throw new InputError('path', `'${printable(path, 200)}' is a glob pattern`, PATH_FIX);
  if (!basename(path).endsWith('.ova') || basename(path) === '.ova') throw new InputError('path', `'${printable(path, 200)}' does not end in .ova`, PATH_FIX);
  checkOutputFile(path, 'path');
  const out = resolve(path);
  const dir = statOrUndefined(dirname(out));
  if (!dir?.isDirectory()) throw new InputError('path', `the directory ${printable(dirname(out), 200)} does not exist`, 'create it first (mkdir -p), or write the OVA into an existing directory');
  try {
    accessSync(dirname(out), fsConstants.W_OK);
  } catch {
    throw new InputError('path', `the directory ${printable(dirname(out), 200)} is not writable`, 'write the OVA into a directory this job may write to');
  }
  const existing = statOrUndefined(out, true);
  if (existing && !existing.isFile() && !existing.isSymbolicLink()) throw new InputError('path', `${printable(path, 200)} exists and is not a regular file`, 'give the path of a new OVA file');
  if (existing && !overwrite) throw new InputError('path', `${printable(path, 200)} already exists`, 'with image, path is the OVA to write: remove the old file, choose another path, or set overwrite: true (which also replaces a published release)');
  return out;
}

/** A path's stats (with `link`, of a symbolic link itself), or undefined when nothing is there. */
function statOrUndefined(path: string, link = false): Stats | undefined {
  try {
    return (link ? lstatSync : statSync)(path);
  } catch {
    return undefined;
  }
}

/** True when the file is an OVA (a tar whose first member is an .ovf descriptor). */
async function isOva(path: string): Promise<boolean> {
  return readOvfDescriptor(path).then(
    () => true,
    () => false,
  );
}
