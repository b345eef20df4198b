/**
 * The OVF 1.0 descriptor of a labforge appliance, generated with an XML library (xmlbuilder2).
 *
 * The envelope follows DMTF DSP0243 1.x / DSP8023 and the shape VirtualBox and VMware (ovftool) import:
 * default namespace `http://schemas.dmtf.org/ovf/envelope/1`, `ovf:`-prefixed attributes, and the
 * schema's element order (References, DiskSection, NetworkSection, VirtualSystem; inside the system Info,
 * Name, ProductSection, AnnotationSection, OperatingSystemSection, VirtualHardwareSection; `rasd:` elements
 * of an Item in the alphabetical order of the CIM schema's sequence).
 */
import { create } from 'xmlbuilder2';
import type { XMLBuilder } from 'xmlbuilder2/lib/interfaces.js';

export const OVF_NS = 'http://schemas.dmtf.org/ovf/envelope/1';
const RASD_NS = 'http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_ResourceAllocationSettingData';
const VSSD_NS = 'http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_VirtualSystemSettingData';
const VMW_NS = 'http://www.vmware.com/schema/ovf';
const XSI_NS = 'http://www.w3.org/2001/XMLSchema-instance';
/** The disk format URI for a streamOptimized VMDK, as VMware and VirtualBox expect it. */
export const VMDK_STREAM_OPTIMIZED_FORMAT = 'http://www.vmware.com/interfaces/specifications/vmdk.html#streamOptimized';

/** The labforge ProductSection (class `labforge`), read back by `ova-read.ts` (detect-build-type, upload). */
export interface LabforgeProduct {
  /** The appliance's name (`hedgehog-lab`, `demo-lab`): which appliance this OVA is a build of. */
  appliance: string;
  buildType: string;
  version: string;
  /** ISO 8601 UTC timestamp of the build. */
  buildDate: string;
  /** Commit the appliance was built from ('' when unknown). */
  gitSha: string;
}

/** The guest operating system, as a CIM OS type id plus VMware's osType name. */
export interface GuestOs {
  /** CIM_OperatingSystem OsType value (96 = Debian 64-bit). */
  cimId: number;
  /** VMware guest id (vmw:osType), e.g. `debian11_64Guest`. */
  vmwareOsType: string;
  description: string;
}

/**
 * A 64-bit Linux of no particular distribution (CIM 101 "Linux 64-Bit", VMware `otherLinux64Guest`): what
 * an OVF honestly declares when nobody said which OS the image holds (pack-ova without an appliance).
 */
export const GENERIC_LINUX_64: GuestOs = { cimId: 101, vmwareOsType: 'otherLinux64Guest', description: 'Linux (64-bit)' };

/** The keys of the labforge ProductSection, in the order they are written. */
export const LABFORGE_PROPERTY_KEYS = ['appliance', 'buildType', 'version', 'buildDate', 'gitSha'] as const;

export interface OvfDescriptorOptions {
  /** The virtual system's name (VirtualBox shows it as the VM name). */
  name: string;
  /** The disk file's name inside the OVA. */
  diskFile: string;
  /** Byte size of the disk file (References/File ovf:size). */
  diskFileSize: number;
  /** The disk's virtual size in bytes (Disk ovf:capacity). */
  capacityBytes: number;
  /** Bytes of guest data actually present (Disk ovf:populatedSize). */
  populatedBytes: number;
  /** Virtual CPUs and memory of the imported VM (the appliance's resource profile). */
  cpus: number;
  memoryMiB: number;
  /** Logical network the single NIC connects to (default `NAT`). */
  network?: string;
  /** The guest OS the OperatingSystemSection declares (the appliance manifest's `os`); no default. */
  os: GuestOs;
  product: LabforgeProduct;
  /** Free text shown as the VM's description (AnnotationSection). */
  annotation: string;
  /** Product name and vendor of the ProductSection (default: the appliance's name, and `labforge`). */
  productName?: string;
  vendor?: string;
}

/** Element order that DSP8023 (and the importers) require; tests check generated descriptors against it. */
export const ENVELOPE_ORDER = ['References', 'DiskSection', 'NetworkSection', 'VirtualSystem'] as const;
export const VIRTUAL_SYSTEM_ORDER = ['Info', 'Name', 'ProductSection', 'AnnotationSection', 'OperatingSystemSection', 'VirtualHardwareSection'] as const;
export const PRODUCT_SECTION_ORDER = ['Info', 'Product', 'Vendor', 'Version', 'FullVersion', 'Property'] as const;
/** CIM_ResourceAllocationSettingData elements in the schema's (alphabetical) sequence order. */
export const RASD_ORDER = [
  'Address',
  'AddressOnParent',
  'AllocationUnits',
  'AutomaticAllocation',
  'AutomaticDeallocation',
  'Caption',
  'Connection',
  'ConsumerVisibility',
  'Description',
  'ElementName',
  'HostResource',
  'InstanceID',
  'Limit',
  'MappingBehavior',
  'OtherResourceType',
  'Parent',
  'PoolID',
  'Reservation',
  'ResourceSubType',
  'ResourceType',
  'VirtualQuantity',
  'Weight',
] as const;
type RasdName = (typeof RASD_ORDER)[number];

/** CIM ResourceType values used below. */
const RESOURCE = { cpu: 3, memory: 4, scsi: 6, nic: 10, disk: 17 } as const;

function item(parent: XMLBuilder, fields: Partial<Record<RasdName, string | number | boolean>>): void {
  const el = parent.ele(OVF_NS, 'Item');
  for (const key of RASD_ORDER) {
    const v = fields[key];
    if (v !== undefined) el.ele(RASD_NS, `rasd:${key}`).txt(String(v));
  }
}

function checkCount(name: string, n: number, min: number): void {
  if (!Number.isSafeInteger(n) || n < min) throw new RangeError(`OVF descriptor: ${name} must be a whole number ≥ ${min}, got ${n}`);
}

/**
 * Builds the OVF descriptor text (UTF-8 XML, pretty-printed, ending in a newline).
 * Throws RangeError for sizes or counts that cannot be right (negative, fractional).
 */
export function buildOvfDescriptor(o: OvfDescriptorOptions): string {
  checkCount('diskFileSize', o.diskFileSize, 0);
  checkCount('capacityBytes', o.capacityBytes, 1);
  checkCount('populatedBytes', o.populatedBytes, 0);
  checkCount('cpus', o.cpus, 1);
  checkCount('memoryMiB', o.memoryMiB, 1);
  const network = o.network ?? 'NAT';
  const os = o.os;

  const env = create({ version: '1.0', encoding: 'UTF-8' }).ele(OVF_NS, 'Envelope', {
    xmlns: OVF_NS,
    'xmlns:ovf': OVF_NS,
    'xmlns:rasd': RASD_NS,
    'xmlns:vssd': VSSD_NS,
    'xmlns:vmw': VMW_NS,
    'xmlns:xsi': XSI_NS,
  });
  env.att(OVF_NS, 'ovf:version', '1.0');
  env.att('http://www.w3.org/XML/1998/namespace', 'xml:lang', 'en-US');

  env
    .ele(OVF_NS, 'References')
    .ele(OVF_NS, 'File')
    .att(OVF_NS, 'ovf:href', o.diskFile)
    .att(OVF_NS, 'ovf:id', 'file1')
    .att(OVF_NS, 'ovf:size', String(o.diskFileSize));

  const disks = env.ele(OVF_NS, 'DiskSection');
  disks.ele(OVF_NS, 'Info').txt('Virtual disk information');
  disks
    .ele(OVF_NS, 'Disk')
    .att(OVF_NS, 'ovf:capacity', String(o.capacityBytes))
    .att(OVF_NS, 'ovf:capacityAllocationUnits', 'byte')
    .att(OVF_NS, 'ovf:diskId', 'vmdisk1')
    .att(OVF_NS, 'ovf:fileRef', 'file1')
    .att(OVF_NS, 'ovf:format', VMDK_STREAM_OPTIMIZED_FORMAT)
    .att(OVF_NS, 'ovf:populatedSize', String(o.populatedBytes));

  const nets = env.ele(OVF_NS, 'NetworkSection');
  nets.ele(OVF_NS, 'Info').txt('The list of logical networks');
  nets.ele(OVF_NS, 'Network').att(OVF_NS, 'ovf:name', network).ele(OVF_NS, 'Description').txt(`The ${network} network`);

  const vs = env.ele(OVF_NS, 'VirtualSystem').att(OVF_NS, 'ovf:id', o.name);
  vs.ele(OVF_NS, 'Info').txt('A virtual machine');
  vs.ele(OVF_NS, 'Name').txt(o.name);

  const product = vs.ele(OVF_NS, 'ProductSection').att(OVF_NS, 'ovf:class', 'labforge');
  product.ele(OVF_NS, 'Info').txt('labforge build information');
  product.ele(OVF_NS, 'Product').txt(o.productName ?? o.product.appliance);
  product.ele(OVF_NS, 'Vendor').txt(o.vendor ?? 'labforge');
  product.ele(OVF_NS, 'Version').txt(o.product.version);
  product.ele(OVF_NS, 'FullVersion').txt(`${o.product.version} ${o.product.buildType}`);
  for (const key of LABFORGE_PROPERTY_KEYS) {
    product
      .ele(OVF_NS, 'Property')
      .att(OVF_NS, 'ovf:key', key)
      .att(OVF_NS, 'ovf:type', 'string')
      .att(OVF_NS, 'ovf:userConfigurable', 'false')
      .att(OVF_NS, 'ovf:value', o.product[key]);
  }

  const note = vs.ele(OVF_NS, 'AnnotationSection');
  note.ele(OVF_NS, 'Info').txt('A human-readable annotation');
  note.ele(OVF_NS, 'Annotation').txt(o.annotation);

  const osSection = vs.ele(OVF_NS, 'OperatingSystemSection').att(OVF_NS, 'ovf:id', String(os.cimId)).att(VMW_NS, 'vmw:osType', os.vmwareOsType);
  osSection.ele(OVF_NS, 'Info').txt('The kind of installed guest operating system');
  osSection.ele(OVF_NS, 'Description').txt(os.description);

  const hw = vs.ele(OVF_NS, 'VirtualHardwareSection');
  hw.ele(OVF_NS, 'Info').txt('Virtual hardware requirements');
  const system = hw.ele(OVF_NS, 'System');
  system.ele(VSSD_NS, 'vssd:ElementName').txt('Virtual Hardware Family');
  system.ele(VSSD_NS, 'vssd:InstanceID').txt('0');
  system.ele(VSSD_NS, 'vssd:VirtualSystemIdentifier').txt(o.name);
  system.ele(VSSD_NS, 'vssd:VirtualSystemType').txt('vmx-07');
  item(hw, {
    AllocationUnits: 'hertz * 10^6',
    Description: 'Number of virtual CPUs',
    ElementName: `${o.cpus} virtual CPU(s)`,
    InstanceID: 1,
    ResourceType: RESOURCE.cpu,
    VirtualQuantity: o.cpus,
  });
  item(hw, {
    AllocationUnits: 'byte * 2^20',
    Description: 'Memory size',
    ElementName: `${o.memoryMiB} MB of memory`,
    InstanceID: 2,
    ResourceType: RESOURCE.memory,
    VirtualQuantity: o.memoryMiB,
  });
  item(hw, {
    Address: 0,
    Description: 'SCSI controller',
    ElementName: 'SCSI controller 0',
    InstanceID: 3,
    ResourceSubType: 'lsilogic',
    ResourceType: RESOURCE.scsi,
  });
  item(hw, {
    AddressOnParent: 0,
    ElementName: 'Hard disk 1',
    HostResource: 'ovf:/disk/vmdisk1',
    InstanceID: 4,
    Parent: 3,
    ResourceType: RESOURCE.disk,
  });
  item(hw, {
    AddressOnParent: 7,
    AutomaticAllocation: true,
    Connection: network,
    Description: `E1000 ethernet adapter on "${network}"`,
    ElementName: 'Network adapter 1',
    InstanceID: 5,
    ResourceSubType: 'E1000',
    ResourceType: RESOURCE.nic,
  });

  return env.end({ prettyPrint: true }) + '\n';
}
