/** One line of docker's streaming JSON (pull, push, build, load): pkg/jsonmessage in moby. */
export interface JSONMessage {
  status?: string;
  id?: string;
  progress?: string;
  progressDetail?: { current?: number; total?: number };
  stream?: string;
  error?: string;
  errorDetail?: { code?: number; message: string };
  aux?: unknown;
}

export type ProgressSink = (msg: JSONMessage) => void;
