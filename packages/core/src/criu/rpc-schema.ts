/**
 * CRIU's RPC messages (the `criu swrk` / criu-service protocol), declared with protobufjs reflection from the
 * documented field numbers. Only the fields ferry uses are declared; unknown fields in responses are skipped by
 * the decoder. protobufjs does not enforce proto2 `required`, so responses are validated in rpc-codec.ts.
 */
import { protoMessage, protoRoot, type FieldSpec } from './proto-message';


export const REQ_TYPE = {
  EMPTY: 0,
  DUMP: 1,
  RESTORE: 2,
  CHECK: 3,
  PRE_DUMP: 4,
  PAGE_SERVER: 5,
  NOTIFY: 6,
  CPUINFO_DUMP: 7,
  CPUINFO_CHECK: 8,
  FEATURE_CHECK: 9,
  VERSION: 10,
  WAIT_PID: 11,
  PAGE_SERVER_CHLD: 12,
  SINGLE_PRE_DUMP: 13,
} as const;
export type ReqTypeName = keyof typeof REQ_TYPE;

export const CG_MODE = { IGNORE: 0, CG_NONE: 1, PROPS: 2, SOFT: 3, FULL: 4, STRICT: 5, DEFAULT: 6 } as const;
export const PRE_DUMP_MODE = { SPLICE: 1, VM_READ: 2 } as const;
export const NETWORK_LOCK = { IPTABLES: 1, NFTABLES: 2, SKIP: 3 } as const;

const OPTS_FIELDS: readonly FieldSpec[] = [
  ['images_dir_fd', 1, 'int32', 'required'],
  ['pid', 2, 'int32'],
  ['leave_running', 3, 'bool'],
  ['ext_unix_sk', 4, 'bool'],
  ['tcp_established', 5, 'bool'],
  ['evasive_devices', 6, 'bool'],
  ['shell_job', 7, 'bool'],
  ['file_locks', 8, 'bool'],
  ['log_level', 9, 'int32'],
  ['log_file', 10, 'string'],
  ['ps', 11, 'criu_page_server_info'],
  ['notify_scripts', 12, 'bool'],
  ['root', 13, 'string'],
  ['parent_img', 14, 'string'],
  ['track_mem', 15, 'bool'],
  ['auto_dedup', 16, 'bool'],
  ['work_dir_fd', 17, 'int32'],
  ['link_remap', 18, 'bool'],
  ['cpu_cap', 20, 'uint32'],
  ['force_irmap', 21, 'bool'],
  ['exec_cmd', 22, 'string', 'repeated'],
  ['manage_cgroups', 24, 'bool'],
  ['cg_root', 25, 'cgroup_root', 'repeated'],
  ['rst_sibling', 26, 'bool'],
  ['inherit_fd', 27, 'inherit_fd', 'repeated'],
  ['auto_ext_mnt', 28, 'bool'],
  ['ext_sharing', 29, 'bool'],
  ['ext_masters', 30, 'bool'],
  ['skip_mnt', 31, 'string', 'repeated'],
  ['enable_fs', 32, 'string', 'repeated'],
  ['manage_cgroups_mode', 34, 'int32'],
  ['ghost_limit', 35, 'uint32'],
  ['external', 37, 'string', 'repeated'],
  ['empty_ns', 38, 'uint32'],
  ['join_ns', 39, 'join_namespace', 'repeated'],
  ['freeze_cgroup', 44, 'string'],
  ['timeout', 45, 'uint32'],
  ['tcp_skip_in_flight', 46, 'bool'],
  ['weak_sysctls', 47, 'bool'],
  ['lazy_pages', 48, 'bool'],
  ['status_fd', 49, 'int32'],
  ['orphan_pts_master', 50, 'bool'],
  ['config_file', 51, 'string'],
  ['tcp_close', 52, 'bool'],
  ['lsm_profile', 53, 'string'],
  ['cgroup_yard', 60, 'string'],
  ['pre_dump_mode', 61, 'int32'],
  ['network_lock', 64, 'int32'],
  ['mntns_compat_mode', 65, 'bool'],
  ['skip_file_rwx_check', 66, 'bool'],
  ['leave_stopped', 69, 'bool'],
  ['display_stats', 70, 'bool'],
];


const root = protoRoot([
  protoMessage('criu_page_server_info', [['address', 1, 'string'], ['port', 2, 'int32'], ['pid', 3, 'int32'], ['fd', 4, 'int32']]),
  protoMessage('join_namespace', [['ns', 1, 'string', 'required'], ['ns_file', 2, 'string', 'required'], ['extra_opt', 3, 'string']]),
  protoMessage('inherit_fd', [['key', 1, 'string', 'required'], ['fd', 2, 'int32', 'required']]),
  protoMessage('cgroup_root', [['ctrl', 1, 'string'], ['path', 2, 'string', 'required']]),
  protoMessage('criu_opts', OPTS_FIELDS),
  protoMessage('criu_features', [['mem_track', 1, 'bool'], ['lazy_pages', 2, 'bool'], ['pidfd_store', 3, 'bool']]),
  protoMessage('criu_dump_resp', [['restored', 1, 'bool']]),
  protoMessage('criu_restore_resp', [['pid', 1, 'int32', 'required']]),
  protoMessage('criu_notify', [['script', 1, 'string'], ['pid', 2, 'int32']]),
  protoMessage('criu_version', [
    ['major_number', 1, 'int32', 'required'],
    ['minor_number', 2, 'int32', 'required'],
    ['gitid', 3, 'string'],
    ['sublevel', 4, 'int32'],
    ['extra', 5, 'int32'],
    ['name', 6, 'string'],
  ]),
  protoMessage('criu_req', [
    ['type', 1, 'int32', 'required'],
    ['opts', 2, 'criu_opts'],
    ['notify_success', 3, 'bool'],
    ['keep_open', 4, 'bool'],
    ['features', 5, 'criu_features'],
    ['pid', 6, 'uint32'],
  ]),
  protoMessage('criu_resp', [
    ['type', 1, 'int32', 'required'],
    ['success', 2, 'bool', 'required'],
    ['dump', 3, 'criu_dump_resp'],
    ['restore', 4, 'criu_restore_resp'],
    ['notify', 5, 'criu_notify'],
    ['ps', 6, 'criu_page_server_info'],
    ['cr_errno', 7, 'int32'],
    ['features', 8, 'criu_features'],
    ['cr_errmsg', 9, 'string'],
    ['version', 10, 'criu_version'],
    ['status', 11, 'int32'],
  ]),
]);
export const CriuReq = root.lookupType('criu_req');
export const CriuResp = root.lookupType('criu_resp');
