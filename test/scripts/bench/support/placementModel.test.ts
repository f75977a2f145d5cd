import {
  balanceOf,
  capacityExists,
  roomLoadUnits,
  seededRandom,
} from '../../../../scripts/bench/support/placementModel';

describe('placement model', () => {
  it('draws the same sequence for the same seed, in [0, 1)', () => {
    const a = seededRandom(42);
    const b = seededRandom(42);
    const draws = Array.from({ length: 1_000 }, () => a());
    expect(draws).toEqual(Array.from({ length: 1_000 }, () => b()));
    expect(Math.min(...draws)).toBeGreaterThanOrEqual(0);
    expect(Math.max(...draws)).toBeLessThan(1);
    expect(seededRandom(43)()).not.toBe(seededRandom(42)());
  });

  it('counts a room as two transports per peer plus audio and video of every other peer', () => {
    // 3 peers: 6 transports + 3 × 2 × 2 consumers.
    expect(roomLoadUnits(3)).toBe(6 + 12);
    expect(roomLoadUnits(2)).toBe(8);
  });

  it('scores the spread as max over mean and counts servers past capacity', () => {
    expect(balanceOf([100, 100, 100, 100], 150)).toMatchObject({
      maxOverMean: 1,
      overCapacity: 0,
      meanLoad: 100,
    });
    expect(balanceOf([400, 0, 0, 0], 150)).toMatchObject({
      maxOverMean: 4,
      overCapacity: 1,
      minLoad: 0,
      maxLoad: 400,
    });
    expect(balanceOf([0, 0], 10).maxOverMean).toBe(1);
    expect(() => balanceOf([], 10)).toThrow(/at least one server/);
  });

  it('judges a refusal against whether any server could take the room', () => {
    expect(capacityExists([90, 100], 100, 10)).toBe(true);
    expect(capacityExists([91, 100], 100, 10)).toBe(false);
  });
});
