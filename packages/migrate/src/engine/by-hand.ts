/**
 * The runtime's own commands for what a hint asks the user to do by hand. Runtime knowledge that belongs to the
 * adapters (#16: RuntimeAdapter.manualCommands); it moves there once that lands.
 */
import type { RuntimeName } from '@ferry/core';

export function byHand(runtime: RuntimeName, name: string): { thaw: string; remove: string } {
  if (runtime === 'lxc') {
    // lxc-unfreeze does not thaw the v1 freezer on hybrid cgroup hosts (measured); writing it through liblxc does.
    return { thaw: `lxc-cgroup -n ${name} freezer.state THAWED`, remove: `lxc-destroy -f -n ${name}` };
  }
  if (runtime === 'docker') return { thaw: `docker unpause ${name}`, remove: `docker rm -f ${name}` };
  return { thaw: `${runtime} resume ${name}`, remove: `${runtime} delete -f ${name}` };
}
