/** Errors the LB answers with their own status and code; the error handler maps everything else. */

export class ApiError extends Error {
  constructor(
    readonly statusCode: number,
    readonly code: string,
    message: string,
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
