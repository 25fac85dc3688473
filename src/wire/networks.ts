/** The networks resource of the Engine API 1.41: network objects, create/connect/disconnect bodies, prune report. */

/** IPAM configuration of one pool (api/types/network.IPAMConfig). */
export interface IpamPoolConfig {
  Subnet?: string;
  IPRange?: string;
  Gateway?: string;
  AuxiliaryAddresses?: Record<string, string>;
}

export interface IpamConfig {
  Driver: string;
  Options: Record<string, string> | null;
  Config: IpamPoolConfig[] | null;
}

/** A container's endpoint on a network, as in the Containers map of a network (api/types.EndpointResource). */
export interface EndpointResource {
  Name: string;
  EndpointID: string;
  MacAddress: string;
  IPv4Address: string;
  IPv6Address: string;
}

/** GET /networks, GET /networks/{id} (api/types.NetworkResource). */
export interface NetworkResource {
  Name: string;
  Id: string;
  Created: string;
  Scope: string;
  Driver: string;
  EnableIPv6: boolean;
  IPAM: IpamConfig;
  Internal: boolean;
  Attachable: boolean;
  Ingress: boolean;
  ConfigFrom: { Network: string };
  ConfigOnly: boolean;
  Containers: Record<string, EndpointResource>;
  Options: Record<string, string>;
  Labels: Record<string, string>;
}

/** POST /networks/create. */
export interface NetworkCreateRequest {
  Name?: string;
  CheckDuplicate?: boolean;
  Driver?: string;
  Scope?: string;
  EnableIPv6?: boolean;
  IPAM?: { Driver?: string; Options?: Record<string, string> | null; Config?: IpamPoolConfig[] | null } | null;
  Internal?: boolean;
  Attachable?: boolean;
  Ingress?: boolean;
  ConfigOnly?: boolean;
  ConfigFrom?: { Network?: string } | null;
  Options?: Record<string, string> | null;
  Labels?: Record<string, string> | null;
}

/** A container's settings on one network (api/types/network.EndpointSettings), in NetworkSettings.Networks. */
/** network.EndpointSettings: one definition, with the container shapes (containers.ts). */
import type { EndpointSettings } from './containers.js';
export type { EndpointSettings };

/** POST /networks/{id}/connect. */
export interface NetworkConnectRequest {
  Container?: string;
  EndpointConfig?: Partial<EndpointSettings> | null;
}

/** POST /networks/{id}/disconnect. */
export interface NetworkDisconnectRequest {
  Container?: string;
  Force?: boolean;
}

/** POST /networks/prune. */
export interface NetworkPruneReport {
  NetworksDeleted: string[] | null;
}
