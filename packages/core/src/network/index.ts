// A container's network during a switch-over: the NFQUEUE packet hold (docs/network-switchover.md).
export { planPacketHold, isPacketHoldRecord, type PacketHoldRecord, type PlanPacketHoldInput, type HoldFamily, type IptablesVariant } from './hold-plan';
export { resolveNetfilterTools, liftPacketHold, type NetfilterTools, type ToolRunner, type ToolOutcome } from './hold-rules';
export { PacketHold, type PacketHoldOptions, type PacketHoldResult, type PacketHoldState, type HoldQueue, type OpenHoldQueue } from './packet-hold';
export { summarizePacket, formatPacketSummary, type PacketSummary } from './describe-packet';
export { holdNetnsTraffic, type HoldNetnsTrafficOptions } from './hold-netns-traffic';
export { freeLocalPort } from './free-port';
