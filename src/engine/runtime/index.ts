/**
 * The runtime module's door: what the containers module (and the composition root) use of it. The OCI spec of a
 * container and of an exec (`spec.ts`), the runtime that runs them through conmon (`runc.ts`: the `Runtime`
 * interface, made by `createRuntime`), docker's seccomp profiles (`seccomp.ts`) and the log drivers with their
 * reader (`logs.ts`). Everything else in those files is the module's own.
 */
export {
  buildSpec, buildExecProcess, writeBundle, normalizeCapabilities, parseDeviceCgroupRule, MASKED_PATHS, READONLY_PATHS,
  type DeviceSpec, type NetworkMode, type OciSpec, type RlimitSpec, type SpecOptions,
} from './spec.js';
export { createRuntime, RuntimeError, type AttachHandle, type Runtime } from './runc.js';
export { parseSeccompJson, type DockerSeccompProfile } from './seccomp.js';
export { checkLogConfig, logAttrs, readLogs, type LogRecord, type LogSettings } from './logs.js';
