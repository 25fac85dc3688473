/**
 * The layers module's function for other engine modules (its interfaces are in `types.ts`): the one tar extractor,
 * which, as kind `context`, unpacks build contexts with the confinement of image layers.
 */
export { extractLayerTar, type EntryWatcher, type ExtractOptions, type ExtractResult } from './extract.js';
