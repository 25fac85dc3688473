/**
 * The images module's functions for other engine modules (its interfaces are in `types.ts`): what an image's
 * config says, in dockerd's words — its top chain ID (the layer a container or a commit builds on), container.Config
 * as Go marshals it, and the Docker version written into the configs the engine makes.
 */
export { topChainOf } from './store.js';
export { DOCKER_VERSION, goContainerConfig } from './format.js';
