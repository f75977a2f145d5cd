/**
 * Typed store errors. Callers branch on these classes (the LB maps them to 503s and metrics), never on
 * AWS SDK error names, which differ between DynamoDB and its emulator in small ways.
 */

export class StoreError extends Error {
  constructor(
    message: string,
    override readonly cause?: unknown,
  ) {
    super(message);
    this.name = new.target.name;
  }
}

/** The table (or the GSI) does not exist in this region: a deployment fault, not a transient one. */
export class TableNotFoundError extends StoreError {}

/** DynamoDB throttled the request after the SDK's own retries. */
export class ThrottledError extends StoreError {}

/** DynamoDB rejected the request shape: a bug in the caller or an input that escaped validation. */
export class StoreValidationError extends StoreError {}

/** The replica did not answer (connection refused, timeout, 5xx). */
export class StoreUnavailableError extends StoreError {}

const THROTTLE_NAMES = new Set([
  'ProvisionedThroughputExceededException',
  'ThrottlingException',
  'RequestLimitExceeded',
  'LimitExceededException',
]);

export function toStoreError(err: unknown, tableName: string, operation: string): StoreError {
  if (err instanceof StoreError) return err;
  const e = err as { name?: string; message?: string; $metadata?: { httpStatusCode?: number } };
  const name = e?.name ?? 'Error';
  const detail = e?.message ?? String(err);
  if (name === 'ResourceNotFoundException') {
    return new TableNotFoundError(`table "${tableName}" not found for ${operation}: ${detail}`, err);
  }
  if (THROTTLE_NAMES.has(name)) {
    return new ThrottledError(`${operation} on "${tableName}" was throttled: ${detail}`, err);
  }
  if (name === 'ValidationException' || name === 'SerializationException') {
    return new StoreValidationError(`${operation} on "${tableName}" was rejected: ${detail}`, err);
  }
  return new StoreUnavailableError(`${operation} on "${tableName}" failed (${name}): ${detail}`, err);
}
