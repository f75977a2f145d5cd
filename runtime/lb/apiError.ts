/** Errors the LB answers with their own status and code; the error handler maps everything else. */

export class ApiError extends Error {
  constructor(
    readonly statusCode: number,
    readonly code: string,
    message: string,
    /** Sent as `Retry-After` (whole seconds): when a retry can succeed, for a retryable 429 or 503. */
    readonly retryAfterSeconds?: number,
  ) {
    super(message);
    this.name = new.target.name;
  }
}

/** No live, active server with room to spare in any usable region. Retryable: servers come and go. */
export class NoCapacityError extends ApiError {
  constructor(message = 'no media server has capacity in any active region; retry shortly') {
    super(503, 'no_capacity', message);
  }
}

/** Two placement attempts lost their conditional writes to servers that are gone. Retryable. */
export class PlacementConflictError extends ApiError {
  constructor(roomId: string) {
    super(
      503,
      'placement_conflict',
      `room "${roomId}" is being moved by another load balancer; retry shortly`,
    );
  }
}

/** The room's media server holds all the load it may; the room cannot take another peer now. */
export class ServerFullError extends ApiError {
  constructor(roomId: string) {
    super(503, 'server_full', `the media server of room "${roomId}" is full; retry shortly`, 5);
  }
}

/**
 * A client says the room's server failed and the LB's probe agrees, but the room moved moments ago:
 * it is not moved again until the server's heartbeats agree too (see TAKEOVER_COOLDOWN_MS).
 */
export class RoomRecoveringError extends ApiError {
  constructor(roomId: string, remainingMs: number) {
    super(
      503,
      'room_recovering',
      `room "${roomId}" moved moments ago and its server is being checked; retry shortly`,
      Math.max(1, Math.ceil(remainingMs / 1000)),
    );
  }
}

/** The LB is shedding joins to keep its latency (LoadShedder.ts); retry after `Retry-After`. */
export class OverloadedError extends ApiError {
  constructor(retryAfterSeconds: number, reason: string) {
    super(
      503,
      'overloaded',
      `this load balancer is shedding joins (${reason}); retry shortly`,
      retryAfterSeconds,
    );
  }
}
