/**
 * Identifiers every side checks the same way. They travel in URLs, tokens, logs and DynamoDB keys, so
 * each is kept to a safe alphabet with a bound; a value outside it is refused at the edge that first
 * sees it, with the same rule everywhere.
 */

/** A room id: a letter or digit, then up to 127 letters, digits, `_`, `.` or `-`. */
export const ROOM_ID_PATTERN = '^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$';
/** A media server id (an EC2 instance id on AWS, `<region>-m<n>` locally). */
export const SERVER_ID_PATTERN = '^[A-Za-z0-9._-]{1,64}$';
/** An AWS region name such as `eu-west-1`. */
export const REGION_PATTERN = '^[a-z]{2}(-[a-z]+)+-[0-9]{1,2}$';
/** Longest identity (a join token's `sub`) any service accepts. */
export const MAX_IDENTITY_LENGTH = 256;
/** Identities the local stack's dev token route mints (a browser types them): a safe, short alphabet. */
export const DEV_IDENTITY_PATTERN = '^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$';

const roomId = new RegExp(ROOM_ID_PATTERN);

export function isRoomId(value: string): boolean {
  return roomId.test(value);
}
