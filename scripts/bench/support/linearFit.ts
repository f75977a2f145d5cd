/** Ordinary least squares y = intercept + slope·x, for extrapolating a cost that grows per unit. */
export interface LinearFit {
  readonly slope: number;
  readonly intercept: number;
  /** Coefficient of determination: how well a straight line explains the points (1 = perfectly). */
  readonly r2: number;
}

export function linearFit(points: readonly { x: number; y: number }[]): LinearFit {
  if (points.length < 2) throw new Error(`a line needs at least 2 points, got ${points.length}`);
  const n = points.length;
  const meanX = points.reduce((s, p) => s + p.x, 0) / n;
  const meanY = points.reduce((s, p) => s + p.y, 0) / n;
  const sxx = points.reduce((s, p) => s + (p.x - meanX) ** 2, 0);
  if (sxx === 0) throw new Error('a line needs at least 2 distinct x values');
  const sxy = points.reduce((s, p) => s + (p.x - meanX) * (p.y - meanY), 0);
  const slope = sxy / sxx;
  const intercept = meanY - slope * meanX;
  const ssTot = points.reduce((s, p) => s + (p.y - meanY) ** 2, 0);
  const ssRes = points.reduce((s, p) => s + (p.y - (intercept + slope * p.x)) ** 2, 0);
  return { slope, intercept, r2: ssTot === 0 ? 1 : 1 - ssRes / ssTot };
}
