export type { EventActor, EventMessage, EventPublisher, EventSource, EventSubscription, EventType } from './types.js';
export { EventBus, EVENTS_LIMIT, encodeEvent } from './bus.js';
export { eventFilter, eventMatches } from './filter.js';
