import {
  chooseInstancesToTerminate,
  decide,
  dynamoRoomCounter,
  type TerminationPolicyInput,
} from '../../../lib/functions/termination-policy';
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';

/** The shape of the Auto Scaling user guide's example payload. */
function input(overrides: Partial<TerminationPolicyInput> = {}): TerminationPolicyInput {
  return {
    AutoScalingGroupName: 'media',
    CapacityToTerminate: [{ AvailabilityZone: 'eu-west-1a', Capacity: 1, InstanceMarketOption: 'on-demand' }],
    Instances: [
      { AvailabilityZone: 'eu-west-1a', InstanceId: 'i-busy', InstanceMarketOption: 'on-demand' },
      { AvailabilityZone: 'eu-west-1a', InstanceId: 'i-quiet', InstanceMarketOption: 'on-demand' },
      { AvailabilityZone: 'eu-west-1b', InstanceId: 'i-empty-other-zone', InstanceMarketOption: 'on-demand' },
    ],
    Cause: 'SCALE_IN',
    ...overrides,
  };
}

describe('media fleet termination policy', () => {
  it('terminates the host with the fewest rooms in the zone Auto Scaling asks for', () => {
    const rooms = new Map([
      ['i-busy', 40],
      ['i-quiet', 2],
      ['i-empty-other-zone', 0],
    ]);
    expect(chooseInstancesToTerminate(input(), rooms)).toEqual(['i-quiet']);
  });

  it('answers exactly the capacity per zone, so the zones stay balanced', () => {
    const rooms = new Map([
      ['a1', 5],
      ['a2', 1],
      ['a3', 3],
      ['b1', 9],
      ['b2', 0],
    ]);
    const chosen = chooseInstancesToTerminate(
      {
        CapacityToTerminate: [
          { AvailabilityZone: 'a', Capacity: 2 },
          { AvailabilityZone: 'b', Capacity: 1 },
        ],
        Instances: [
          { AvailabilityZone: 'a', InstanceId: 'a1' },
          { AvailabilityZone: 'a', InstanceId: 'a2' },
          { AvailabilityZone: 'a', InstanceId: 'a3' },
          { AvailabilityZone: 'b', InstanceId: 'b1' },
          { AvailabilityZone: 'b', InstanceId: 'b2' },
        ],
      },
      rooms,
    );
    expect(chosen).toEqual(['a2', 'a3', 'b2']);
  });

  it('counts a host without a server item as empty (it never registered, or its item expired)', () => {
    expect(chooseInstancesToTerminate(input(), new Map([['i-quiet', 1]]))).toEqual(['i-busy']);
  });

  it('hands the choice back to the next policies when room counts cannot be read', async () => {
    const logged = jest.spyOn(console, 'error').mockImplementation(() => undefined);
    const out = await decide(input(), {
      roomsOf: async () => {
        throw new Error('replica unreachable');
      },
    });
    expect(out.InstanceIDs).toEqual(['i-busy', 'i-quiet', 'i-empty-other-zone']);
    expect(logged).toHaveBeenCalledWith(expect.stringContaining('replica unreachable'));
    logged.mockRestore();
  });

  it("reads the heartbeat's rooms attribute from the server items of this region's replica", async () => {
    const sent: unknown[] = [];
    const client = {
      send: async (command: { input: unknown }) => {
        sent.push(command.input);
        return {
          Responses: {
            rooms: [
              { id: { S: 'i-busy' }, rooms: { N: '40' } },
              { id: { S: 'i-quiet' }, rooms: { N: '2' } },
            ],
          },
        };
      },
    } as unknown as DynamoDBClient;
    const counts = await dynamoRoomCounter(client, 'rooms').roomsOf(['i-busy', 'i-quiet']);
    expect(counts).toEqual(
      new Map([
        ['i-busy', 40],
        ['i-quiet', 2],
      ]),
    );
    expect(sent).toEqual([
      expect.objectContaining({
        RequestItems: {
          rooms: expect.objectContaining({
            Keys: [
              { pk: { S: 'server#i-busy' }, sk: { S: 'meta' } },
              { pk: { S: 'server#i-quiet' }, sk: { S: 'meta' } },
            ],
          }),
        },
      }),
    ]);
  });
});
