/** Network commands and the `network` group. */
import type { CommandSpec, FlagSpec, GroupSpec } from '../spec.js';
import { FORMAT_PLAIN, FORMAT_TABLE } from './common.js';

const lsFlags: FlagSpec[] = [
  { long: 'filter', short: 'f', type: 'filter', usage: "Provide filter values (e.g. 'driver=bridge')", repeatable: true },
  { long: 'format', type: 'string', usage: FORMAT_TABLE },
  { long: 'no-trunc', usage: 'Do not truncate the output' },
  { long: 'quiet', short: 'q', usage: 'Only display network IDs' },
];
const rmFlags: FlagSpec[] = [{ long: 'force', short: 'f', usage: 'Do not error if the network does not exist' }];

export const NETWORK_COMMANDS: CommandSpec[] = [
  {
    path: ['network', 'create'], use: '[OPTIONS] NETWORK', short: 'Create a network',
    flags: [
      { long: 'attachable', usage: 'Enable manual container attachment' },
      { long: 'aux-address', type: 'map', usage: 'Auxiliary IPv4 or IPv6 addresses used by Network driver', def: 'map[]', repeatable: true },
      { long: 'driver', short: 'd', type: 'string', usage: 'Driver to manage the Network', def: 'bridge' },
      { long: 'gateway', type: 'strings', usage: 'IPv4 or IPv6 Gateway for the master subnet', repeatable: true },
      { long: 'internal', usage: 'Restrict external access to the network' },
      { long: 'ip-range', type: 'strings', usage: 'Allocate container ip from a sub-range', repeatable: true },
      { long: 'ipam-driver', type: 'string', usage: 'IP Address Management Driver', def: 'default' },
      { long: 'ipam-opt', type: 'map', usage: 'Set IPAM driver specific options', def: 'map[]', repeatable: true },
      { long: 'ipv6', usage: 'Enable IPv6 networking' },
      { long: 'label', type: 'list', usage: 'Set metadata on a network', repeatable: true },
      { long: 'opt', short: 'o', type: 'map', usage: 'Set driver specific options', def: 'map[]', repeatable: true },
      { long: 'subnet', type: 'strings', usage: 'Subnet in CIDR format that represents a network segment', repeatable: true },
    ],
    args: { kind: 'exact', n: 1 }, impl: ['network', 'runNetworkCreate'],
  },
  {
    path: ['network', 'connect'], use: '[OPTIONS] NETWORK CONTAINER', short: 'Connect a container to a network',
    flags: [
      { long: 'alias', type: 'strings', usage: 'Add network-scoped alias for the container', repeatable: true },
      { long: 'ip', type: 'string', usage: 'IPv4 address (e.g., "172.30.100.104")' },
      { long: 'link', type: 'list', usage: 'Add link to another container', repeatable: true },
    ],
    args: { kind: 'exact', n: 2 }, impl: ['network', 'runNetworkConnect'],
  },
  {
    path: ['network', 'disconnect'], use: '[OPTIONS] NETWORK CONTAINER', short: 'Disconnect a container from a network',
    flags: [{ long: 'force', short: 'f', usage: 'Force the container to disconnect from a network' }],
    args: { kind: 'exact', n: 2 }, impl: ['network', 'runNetworkDisconnect'],
  },
  {
    path: ['network', 'inspect'], use: '[OPTIONS] NETWORK [NETWORK...]', short: 'Display detailed information on one or more networks',
    flags: [{ long: 'format', short: 'f', type: 'string', usage: FORMAT_PLAIN }, { long: 'verbose', short: 'v', usage: 'Verbose output for diagnostics' }],
    args: { kind: 'min', n: 1 }, impl: ['network', 'runNetworkInspect'],
  },
  { path: ['network', 'ls'], use: '[OPTIONS]', short: 'List networks', aliases: ['network ls', 'network list'], flags: lsFlags, args: { kind: 'none' }, impl: ['network', 'runNetworkLs'] },
  { path: ['network', 'list'], alias: true, use: '[OPTIONS]', short: 'List networks', aliases: ['network ls', 'network list'], flags: lsFlags, args: { kind: 'none' }, impl: ['network', 'runNetworkLs'] },
  {
    path: ['network', 'prune'], use: '[OPTIONS]', short: 'Remove all unused networks',
    flags: [
      { long: 'filter', type: 'filter', usage: 'Provide filter values (e.g. "until=<timestamp>")', repeatable: true },
      { long: 'force', short: 'f', usage: 'Do not prompt for confirmation' },
    ],
    args: { kind: 'none' }, impl: ['network', 'runNetworkPrune'],
  },
  { path: ['network', 'rm'], use: 'NETWORK [NETWORK...]', short: 'Remove one or more networks', aliases: ['network rm', 'network remove'], flags: rmFlags, args: { kind: 'min', n: 1 }, impl: ['network', 'runNetworkRm'] },
  { path: ['network', 'remove'], alias: true, use: 'NETWORK [NETWORK...]', short: 'Remove one or more networks', aliases: ['network rm', 'network remove'], flags: rmFlags, args: { kind: 'min', n: 1 }, impl: ['network', 'runNetworkRm'] },
];

export const NETWORK_GROUPS: GroupSpec[] = [{ path: ['network'], short: 'Manage networks', group: 'management' }];
