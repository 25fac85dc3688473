/** GET /events: one message of the stream (moby's api/types/events.Message, field order as Go marshals it). */
export type EventType = 'container' | 'image' | 'volume' | 'network' | 'daemon' | 'plugin' | 'builder';

export interface EventActor {
  ID: string;
  Attributes: Record<string, string>;
}

export interface EventMessage {
  /** Legacy fields, filled for container and image events only: status = Action, id = Actor.ID, from = image. */
  status?: string;
  id?: string;
  from?: string;
  Type: EventType;
  Action: string;
  Actor: EventActor;
  scope: 'local' | 'swarm';
  /** Unix seconds. */
  time: number;
  /** Unix nanoseconds. */
  timeNano: number;
}
