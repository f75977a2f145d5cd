/** The silence detector on its own, on jest's clock: when it speaks, and how often. */
import { PipeSilenceDetector } from '../../../runtime/media/PipeSilenceDetector';

describe('PipeSilenceDetector', () => {
  let events: string[];
  let created: PipeSilenceDetector[];

  beforeEach(() => {
    jest.useFakeTimers();
    events = [];
    created = [];
  });

  afterEach(() => {
    for (const d of created) d.stop();
    jest.useRealTimers();
  });

  function detector(options = {}) {
    const d = new PipeSilenceDetector({
      windowMs: 1_000,
      checkIntervalMs: 100,
      setupGraceMs: 5_000,
      ...options,
      now: () => Date.now(),
    });
    d.on('silent', (ms) => events.push(`silent ${ms}`));
    d.on('heard', () => events.push('heard'));
    created.push(d);
    return d;
  }

  /** Calls `heard()` every `everyMs` for `forMs`. */
  function hear(target: PipeSilenceDetector, everyMs: number, forMs: number) {
    for (let t = 0; t < forMs; t += everyMs) {
      jest.advanceTimersByTime(everyMs);
      target.heard();
    }
  }

  test('stays quiet while packets keep coming, even with gaps shorter than the window', () => {
    const d = detector();
    d.start();
    hear(d, 200, 2_000);
    hear(d, 900, 5_400);
    expect(events).toEqual([]);
    expect(d.silent).toBe(false);
  });

  test('reports silence once per quiet spell, between the window and the window plus one check', () => {
    const d = detector();
    d.start();
    hear(d, 200, 1_000);
    jest.advanceTimersByTime(999);
    expect(events).toEqual([]);
    jest.advanceTimersByTime(101);
    expect(events).toEqual(['silent 1000']);
    jest.advanceTimersByTime(10_000);
    expect(events).toEqual(['silent 1000']);
    expect(d.silent).toBe(true);
  });

  test('reports packets after silence once, then watches for the next silence', () => {
    const d = detector();
    d.start();
    d.heard();
    jest.advanceTimersByTime(1_100);
    d.heard();
    d.heard();
    expect(events).toEqual(['silent 1000', 'heard']);
    jest.advanceTimersByTime(1_100);
    expect(events).toEqual(['silent 1000', 'heard', 'silent 1000']);
  });

  test('gives the remote the setup grace to be heard first', () => {
    const d = detector();
    d.start();
    jest.advanceTimersByTime(4_900);
    expect(events).toEqual([]);
    expect(d.everHeard).toBe(false);
    jest.advanceTimersByTime(100);
    expect(events).toEqual(['silent 5000']);
  });

  test('nothing before start or after stop', () => {
    const d = detector();
    jest.advanceTimersByTime(10_000);
    d.start();
    d.heard();
    d.stop();
    d.stop();
    jest.advanceTimersByTime(10_000);
    expect(events).toEqual([]);
    expect(d.running).toBe(false);
  });

  test('refuses a window that is not a positive number of milliseconds', () => {
    expect(() => new PipeSilenceDetector({ windowMs: 0 })).toThrow(
      'silence windowMs is 0; give a positive number of milliseconds',
    );
    expect(() => new PipeSilenceDetector({ checkIntervalMs: Number.NaN })).toThrow(/checkIntervalMs is NaN/);
  });
});
