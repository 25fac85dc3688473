export { BridgeNetwork, macForIp, vethName, type BridgeConfig, type Endpoint, type NetworkModeName } from './bridge.js';
export { Ipam, ipToInt, intToIp, parseCidr } from './ipam.js';
export { publishPort, PortAllocatedError, type PortMapping, type BoundPort } from './portproxy.js';
export { NetworkService, boundPorts, parseSubnet, type ContainerDirectory, type NetContainer, type NetworkEventHook } from './service.js';
export { linkEnv, linkHost, parseLink, type LinkedContainer } from './links.js';
