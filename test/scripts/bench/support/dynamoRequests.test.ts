import {
  classifyDynamoRequest,
  countKey,
  diffCounts,
  joinPathRequests,
  totalRequests,
} from '../../../../scripts/bench/support/dynamoRequests';

const target = (op: string) => `DynamoDB_20120810.${op}`;

describe('classifyDynamoRequest', () => {
  it('names the operation and the kind of item from the key or the item', () => {
    const getRoom = JSON.stringify({ TableName: 't', Key: { pk: { S: 'room#r1' }, sk: { S: 'meta' } } });
    expect(classifyDynamoRequest(target('GetItem'), getRoom)).toEqual({ operation: 'GetItem', kind: 'room' });
    // A placement's item carries `region#…` in its GSI key; the partition key decides.
    const putRoom = JSON.stringify({ Item: { pk: { S: 'room#r1' }, gsi1pk: { S: 'region#eu-west-1' } } });
    expect(classifyDynamoRequest(target('PutItem'), putRoom)).toEqual({ operation: 'PutItem', kind: 'room' });
    const summary = JSON.stringify({ Item: { pk: { S: 'region#eu-west-1' } } });
    expect(countKey(classifyDynamoRequest(target('PutItem'), summary))).toBe('PutItem:region');
    const server = JSON.stringify({ Key: { pk: { S: 'server#m1' } } });
    expect(countKey(classifyDynamoRequest(target('GetItem'), server))).toBe('GetItem:server');
    const batch = JSON.stringify({
      RequestItems: {
        t: { Keys: [{ pk: { S: 'room#r1' } }, { pk: { S: 'room#r2' } }], ConsistentRead: true },
      },
    });
    expect(countKey(classifyDynamoRequest(target('BatchGetItem'), batch))).toBe('BatchGetItem:room');
  });

  it('files queries under the index and anything unreadable under other', () => {
    expect(classifyDynamoRequest(target('Query'), '{"IndexName":"gsi1"}')).toEqual({
      operation: 'Query',
      kind: 'index',
    });
    expect(classifyDynamoRequest(target('PutItem'), 'not json')).toEqual({
      operation: 'PutItem',
      kind: 'other',
    });
    expect(classifyDynamoRequest(undefined, '{}')).toEqual({ operation: 'unknown', kind: 'other' });
  });
});

describe('request counts', () => {
  it('charges room and server items to joins and the rest to background loops', () => {
    const counts = {
      'GetItem:room': 10,
      'PutItem:room': 4,
      'GetItem:server': 1,
      'Query:index': 6,
      'PutItem:region': 2,
    };
    expect(joinPathRequests(counts)).toBe(15);
    expect(totalRequests(counts)).toBe(23);
  });

  it('diffs counters key by key, leaving out what did not move', () => {
    expect(
      diffCounts(
        { 'GetItem:room': 12, 'Query:index': 6, 'PutItem:room': 1 },
        { 'GetItem:room': 2, 'Query:index': 6 },
      ),
    ).toEqual({
      'GetItem:room': 10,
      'PutItem:room': 1,
    });
  });
});
