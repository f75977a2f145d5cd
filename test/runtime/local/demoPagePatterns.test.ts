/**
 * The browser demo's form checks a room name and an identity before it asks for a token, with HTML
 * `pattern` attributes. Those are the one place outside runtime/protocol that spells the id rules
 * (an HTML attribute cannot import them, and browsers compile it with the `v` flag, which wants `-`
 * escaped in a class), so this test holds them to runtime/protocol/ids.ts: a rule changed there and not
 * on the page fails here instead of the page refusing names the services accept (or the reverse).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { DEV_IDENTITY_PATTERN, ROOM_ID_PATTERN } from '../../../runtime/protocol/ids';

const PAGE = fs.readFileSync(path.resolve(__dirname, '../../../runtime/client/demo/index.html'), 'utf8');

/** The `pattern` of the input with this id, as the anchored source runtime/protocol spells. */
function patternOf(id: string): string {
  const input = new RegExp(`<input[^>]*\\bid="${id}"[^>]*>`).exec(PAGE)?.[0];
  const pattern = input && /\bpattern="([^"]*)"/.exec(input)?.[1];
  if (!pattern) throw new Error(`the demo page has no input#${id} with a pattern`);
  // HTML anchors the pattern itself; `\-` is the v-flag spelling of a literal `-` in a class.
  return `^${pattern.replace(/\\-/g, '-')}$`;
}

test('the room input takes exactly the room ids the services take', () => {
  expect(patternOf('room')).toBe(ROOM_ID_PATTERN);
});

test('the name input takes exactly the identities the dev token route mints', () => {
  expect(patternOf('name')).toBe(DEV_IDENTITY_PATTERN);
});

test('the page patterns compile as browsers compile them (v flag) and agree with the rules on examples', () => {
  for (const [id, rule] of [
    ['room', ROOM_ID_PATTERN],
    ['name', DEV_IDENTITY_PATTERN],
  ] as const) {
    const raw = /\bpattern="([^"]*)"/.exec(new RegExp(`<input[^>]*\\bid="${id}"[^>]*>`).exec(PAGE)![0])![1]!;
    const browser = new RegExp(`^(?:${raw})$`, 'v');
    const service = new RegExp(rule);
    for (const value of [
      'a',
      'Room-1.b_c',
      '-lead',
      '.x',
      'a b',
      'x'.repeat(64),
      'x'.repeat(65),
      'x'.repeat(128),
      'x'.repeat(129),
      'é',
    ]) {
      expect([id, value, browser.test(value)]).toEqual([id, value, service.test(value)]);
    }
  }
});
