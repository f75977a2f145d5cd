/**
 * The media fleet's custom termination policy (an Auto Scaling Lambda termination policy): when the
 * group scales in, terminate the hosts that carry the fewest rooms, so that the drain hook that follows
 * (media-host-script.ts) has the fewest calls to wait for and the fewest peers to send on.
 *
 * Runs as an inline Lambda function (lib/inline-code.ts): node built-ins and the Lambda runtime's AWS
 * SDK only. Auto Scaling gives it two seconds; on any error it answers every suggested instance, which
 * hands the choice to the group's next termination policies instead of blocking the scale-in (an empty
 * answer would make Auto Scaling retry for as long as the group is above its desired capacity).
 */
import { BatchGetItemCommand, DynamoDBClient } from '@aws-sdk/client-dynamodb';

/** What Auto Scaling sends (Auto Scaling user guide, "Create a custom termination policy with Lambda"). */
export interface TerminationPolicyInput {
  readonly AutoScalingGroupName?: string;
  readonly CapacityToTerminate: readonly {
    readonly AvailabilityZone: string;
    readonly Capacity: number;
    readonly InstanceMarketOption?: string;
  }[];
  readonly Instances: readonly {
    readonly AvailabilityZone: string;
    readonly InstanceId: string;
    readonly InstanceMarketOption?: string;
  }[];
  readonly Cause?: string;
}

export interface TerminationPolicyOutput {
  readonly InstanceIDs: string[];
}

/** DynamoDB's BatchGetItem takes at most 100 keys. */
const BATCH_GET_MAX_KEYS = 100;

/**
 * Per requested (zone, market option) capacity, the suggested instances of that zone with the fewest
 * rooms. Auto Scaling has already balanced the zones in `CapacityToTerminate`; answering exactly that
 * many per zone keeps the group balanced. An instance without a server item (it never registered, or
 * its item expired) counts as empty: terminating it cuts no call.
 */
export function chooseInstancesToTerminate(
  input: TerminationPolicyInput,
  roomsByInstance: ReadonlyMap<string, number>,
): string[] {
  const chosen = new Set<string>();
  const rooms = (id: string) => roomsByInstance.get(id) ?? 0;
  for (const want of input.CapacityToTerminate) {
    const candidates = input.Instances.filter(
      (i) =>
        i.AvailabilityZone === want.AvailabilityZone &&
        (want.InstanceMarketOption === undefined || i.InstanceMarketOption === want.InstanceMarketOption) &&
        !chosen.has(i.InstanceId),
    ).sort((a, b) => rooms(a.InstanceId) - rooms(b.InstanceId) || a.InstanceId.localeCompare(b.InstanceId));
    for (const instance of candidates.slice(0, Math.max(0, want.Capacity))) chosen.add(instance.InstanceId);
  }
  return [...chosen];
}

export interface RoomCounter {
  /** Rooms per instance id, from the media servers' own items (server id = instance id on AWS). */
  roomsOf(instanceIds: readonly string[]): Promise<Map<string, number>>;
}

export async function decide(
  input: TerminationPolicyInput,
  counter: RoomCounter,
): Promise<TerminationPolicyOutput> {
  const suggested = input.Instances.map((i) => i.InstanceId);
  try {
    const rooms = await counter.roomsOf(suggested);
    return { InstanceIDs: chooseInstancesToTerminate(input, rooms) };
  } catch (err) {
    console.error(
      `room counts unavailable (${(err as Error).message}); leaving the choice to the next policy`,
    );
    return { InstanceIDs: suggested };
  }
}

/** Reads `server#<id>` items from this region's replica (the `rooms` attribute the heartbeat writes). */
export function dynamoRoomCounter(client: DynamoDBClient, tableName: string): RoomCounter {
  return {
    async roomsOf(instanceIds) {
      const rooms = new Map<string, number>();
      for (let i = 0; i < instanceIds.length; i += BATCH_GET_MAX_KEYS) {
        let keys: Record<string, { S: string }>[] | undefined = instanceIds
          .slice(i, i + BATCH_GET_MAX_KEYS)
          .map((id) => ({ pk: { S: `server#${id}` }, sk: { S: 'meta' } }));
        // Unprocessed keys come back under throttling; the two-second budget allows a couple of rounds.
        for (let round = 0; keys && keys.length > 0 && round < 3; round++) {
          const out = await client.send(
            new BatchGetItemCommand({
              RequestItems: {
                [tableName]: {
                  Keys: keys,
                  ProjectionExpression: 'id, #rooms',
                  ExpressionAttributeNames: { '#rooms': 'rooms' },
                },
              },
            }),
          );
          for (const item of out.Responses?.[tableName] ?? []) {
            const id = item.id?.S;
            if (id) rooms.set(id, Number(item.rooms?.N ?? 0));
          }
          keys = out.UnprocessedKeys?.[tableName]?.Keys as typeof keys;
        }
        if (keys && keys.length > 0) throw new Error(`${keys.length} server items stayed unprocessed`);
      }
      return rooms;
    },
  };
}

let client: DynamoDBClient | undefined;

export async function handler(input: TerminationPolicyInput): Promise<TerminationPolicyOutput> {
  const tableName = process.env.TABLE_NAME;
  if (!tableName) return { InstanceIDs: input.Instances.map((i) => i.InstanceId) };
  // Created once per execution environment: a warm invocation spends its two seconds on the read.
  client ??= new DynamoDBClient({ maxAttempts: 2 });
  return decide(input, dynamoRoomCounter(client, tableName));
}
