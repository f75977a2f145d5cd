import { linearFit } from '../../../../scripts/bench/support/linearFit';
import { parseProcStatCpuMs, parseVmRssBytes } from '../../../../scripts/bench/support/processes';

describe('/proc parsing', () => {
  it('reads utime + stime after a command name holding spaces and parentheses', () => {
    // Fields: pid (comm) state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime ...
    const stat = '4242 (node (tsx) x) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 30 0 0 20 0 11 0';
    expect(parseProcStatCpuMs(stat)).toBe(2_800);
    expect(() => parseProcStatCpuMs('garbage')).toThrow(/unreadable/);
  });

  it('reads VmRSS in bytes', () => {
    expect(parseVmRssBytes('Name:\tnode\nVmPeak:\t  900 kB\nVmRSS:\t   98304 kB\nThreads:\t11\n')).toBe(
      98_304 * 1024,
    );
    expect(() => parseVmRssBytes('Name:\tnode\n')).toThrow(/VmRSS/);
  });
});

describe('linearFit', () => {
  it('recovers a line and says how well it fits', () => {
    const fit = linearFit([0, 50, 100, 150].map((x) => ({ x, y: 1 + 0.08 * x })));
    expect(fit.slope).toBeCloseTo(0.08, 10);
    expect(fit.intercept).toBeCloseTo(1, 10);
    expect(fit.r2).toBeCloseTo(1, 10);
  });

  it('refuses what is not a line', () => {
    expect(() => linearFit([{ x: 1, y: 1 }])).toThrow(/at least 2 points/);
    expect(() =>
      linearFit([
        { x: 1, y: 1 },
        { x: 1, y: 2 },
      ]),
    ).toThrow(/distinct x/);
  });
});
