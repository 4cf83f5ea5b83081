/**
 * CRIU's 32-bit image magics (criu/include/magic.h), typed in by hand from the documented values. Since image
 * format v1.1 every image except inventory.img starts with a "set" magic (IMG_COMMON for ordinary images,
 * IMG_SERVICE for stats-* and irmap-cache) followed by the image's own magic; raw images (pages-N.img, tarballs,
 * ip tool dumps) have no magic at all.
 */

export const IMG_COMMON_MAGIC = 0x54564319;
export const IMG_SERVICE_MAGIC = 0x55105940;

/** How an image file opens: which set magic precedes the image magic, if any. */
export type MagicSet = 'common' | 'service' | 'none';

export interface ImageKind {
  /** CRIU's name for the image type, as crit prints it ("PSTREE", "PAGEMAP"...). */
  name: string;
  magic: number;
  set: MagicSet;
}

// Several CRIU image types share a magic (shmem pagemaps use PAGEMAP's); one name per value is enough to identify.
const COMMON_MAGICS: ReadonlyArray<readonly [string, number]> = [
  ['PSTREE', 0x50273030],
  ['FDINFO', 0x56213732],
  ['PAGEMAP', 0x56084025],
  ['CORE', 0x55053847],
  ['IDS', 0x54432030],
  ['VMAS', 0x54123737],
  ['PIPES', 0x56513555],
  ['PIPES_DATA', 0x56453709],
  ['FIFO', 0x58364939],
  ['FIFO_DATA', 0x59333054],
  ['SIGACT', 0x55344201],
  ['UNIXSK', 0x54373943],
  ['INETSK', 0x56443851],
  ['PACKETSK', 0x60454618],
  ['ITIMERS', 0x57464056],
  ['POSIX_TIMERS', 0x52603957],
  ['SK_QUEUES', 0x56264026],
  ['UTSNS', 0x54473203],
  ['CREDS', 0x54023547],
  ['IPC_VAR', 0x53115007],
  ['IPCNS_SHM', 0x46283044],
  ['IPCNS_MSG', 0x55453737],
  ['IPCNS_SEM', 0x59573019],
  ['REG_FILES', 0x50363636],
  ['EXT_FILES', 0x59255641],
  ['FS', 0x51403912],
  ['MM', 0x57492820],
  ['REMAP_FPATH', 0x59133954],
  ['GHOST_FILE', 0x52583605],
  ['TCP_STREAM', 0x51465506],
  ['EVENTFD_FILE', 0x44523722],
  ['EVENTPOLL_FILE', 0x45023858],
  ['EVENTPOLL_TFD', 0x44433746],
  ['SIGNALFD', 0x57323820],
  ['INOTIFY_FILE', 0x48424431],
  ['INOTIFY_WD', 0x54562009],
  ['MNTS', 0x55563928],
  ['NETDEV', 0x57373951],
  ['NETNS', 0x55933752],
  ['TTY_FILES', 0x59433025],
  ['TTY_INFO', 0x59453036],
  ['TTY_DATA', 0x59413026],
  ['FILE_LOCKS', 0x54323616],
  ['RLIMIT', 0x57113925],
  ['FANOTIFY_FILE', 0x55096122],
  ['FANOTIFY_MARK', 0x56506035],
  ['SIGNAL', 0x59255647],
  ['NETLINK_SK', 0x58005614],
  ['NS_FILES', 0x61394011],
  ['TUNFILE', 0x57143751],
  ['CGROUP', 0x59383330],
  ['TIMERFD', 0x50493712],
  ['CPUINFO', 0x61404013],
  ['USERNS', 0x55474906],
  ['SECCOMP', 0x64413049],
  ['BINFMT_MISC', 0x67343323],
  ['AUTOFS', 0x49353943],
  ['FILES', 0x56303138],
  ['MEMFD_INODE', 0x48453499],
  ['TIMENS', 0x43114433],
  ['PIDNS', 0x61157326],
  ['BPFMAP_FILE', 0x57506142],
  ['BPFMAP_DATA', 0x64324033],
  ['APPARMOR', 0x59423047],
];

export const IMAGE_KINDS = {
  inventory: { name: 'INVENTORY', magic: 0x58313116, set: 'none' },
  pstree: { name: 'PSTREE', magic: 0x50273030, set: 'common' },
  pagemap: { name: 'PAGEMAP', magic: 0x56084025, set: 'common' },
  mm: { name: 'MM', magic: 0x57492820, set: 'common' },
  stats: { name: 'STATS', magic: 0x57093306, set: 'service' },
  irmapCache: { name: 'IRMAP_CACHE', magic: 0x57004059, set: 'service' },
} as const satisfies Record<string, ImageKind>;

const BY_SET_AND_MAGIC = new Map<string, ImageKind>();
function register(kind: ImageKind): void {
  const key = `${kind.set}:${kind.magic}`;
  if (!BY_SET_AND_MAGIC.has(key)) BY_SET_AND_MAGIC.set(key, kind);
}
for (const kind of Object.values(IMAGE_KINDS)) register(kind);
for (const [name, magic] of COMMON_MAGICS) register({ name, magic, set: 'common' });

/**
 * Names the image type from the first 8 bytes of a file, or undefined for raw images and foreign files. Images
 * written before format v1.1 (no set magic) are recognised too.
 */
export function identifyImageHeader(header: Uint8Array): ImageKind | undefined {
  if (header.length < 4) return undefined;
  const view = Buffer.from(header.buffer, header.byteOffset, header.byteLength);
  const first = view.readUInt32LE(0);
  const set: MagicSet | undefined = first === IMG_COMMON_MAGIC ? 'common' : first === IMG_SERVICE_MAGIC ? 'service' : undefined;
  if (set && view.length >= 8) return BY_SET_AND_MAGIC.get(`${set}:${view.readUInt32LE(4)}`);
  return BY_SET_AND_MAGIC.get(`none:${first}`) ?? oldFormat(first);
}

function oldFormat(magic: number): ImageKind | undefined {
  const kind = BY_SET_AND_MAGIC.get(`common:${magic}`);
  return kind && { ...kind, set: 'none' };
}

export function hex32(value: number): string {
  return `0x${value.toString(16).padStart(8, '0')}`;
}
