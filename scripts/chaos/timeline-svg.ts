/**
 * Renders a chaos run as an SVG timeline: the injection, when DNS stopped answering the failed region,
 * the rollback, and one lane per client group with each client's outage (detect → rejoin) as a bar.
 * Plain SVG text, no dependencies, readable in any browser.
 */

export interface TimelineClient {
  readonly id: string;
  /** Ms since injection; null when the client never noticed a failure. */
  readonly detectedAtMs: number | null;
  /** Ms since injection; null when it never recovered. */
  readonly recoveredAtMs: number | null;
}

export interface TimelineGroup {
  readonly name: string;
  readonly clients: readonly TimelineClient[];
}

export interface TimelineInput {
  readonly title: string;
  /** Observation window after the injection, ms. */
  readonly durationMs: number;
  readonly markers: readonly { readonly atMs: number; readonly label: string; readonly color: string }[];
  readonly groups: readonly TimelineGroup[];
}

const WIDTH = 1000;
const LEFT = 220;
const RIGHT = 30;
const ROW = 9;
const GROUP_GAP = 26;
const TOP = 92;

function esc(text: string): string {
  return text.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]!);
}

export function renderTimelineSvg(input: TimelineInput): string {
  const plotWidth = WIDTH - LEFT - RIGHT;
  const x = (ms: number) =>
    LEFT + (Math.max(0, Math.min(ms, input.durationMs)) / input.durationMs) * plotWidth;
  const parts: string[] = [];
  let y = TOP;

  for (const group of input.groups) {
    const affected = group.clients.filter((c) => c.detectedAtMs !== null);
    const recovered = affected.filter((c) => c.recoveredAtMs !== null).length;
    parts.push(
      `<text x="10" y="${y + 12}" font-size="13" font-weight="600">${esc(group.name)}</text>`,
      `<text x="10" y="${y + 28}" font-size="11" fill="#5a6372">${group.clients.length} clients, ${affected.length} affected, ${recovered} recovered</text>`,
    );
    const rows = Math.max(group.clients.length, 3);
    parts.push(`<rect x="${LEFT}" y="${y}" width="${plotWidth}" height="${rows * ROW}" fill="#f3f5f8"/>`);
    group.clients.forEach((c, i) => {
      const rowY = y + i * ROW + 1;
      if (c.detectedAtMs === null) {
        parts.push(`<rect x="${LEFT}" y="${rowY}" width="${plotWidth}" height="${ROW - 2}" fill="#cfe9d9"/>`);
        return;
      }
      const end = c.recoveredAtMs ?? input.durationMs;
      parts.push(
        `<rect x="${LEFT}" y="${rowY}" width="${x(c.detectedAtMs) - LEFT}" height="${ROW - 2}" fill="#cfe9d9"/>`,
        `<rect x="${x(c.detectedAtMs)}" y="${rowY}" width="${Math.max(1, x(end) - x(c.detectedAtMs))}" height="${ROW - 2}" fill="${c.recoveredAtMs === null ? '#d2423b' : '#f0a34a'}"><title>${esc(c.id)}: down ${c.detectedAtMs} ms → ${c.recoveredAtMs === null ? 'never recovered' : `${c.recoveredAtMs} ms`}</title></rect>`,
      );
      if (c.recoveredAtMs !== null) {
        parts.push(
          `<rect x="${x(end)}" y="${rowY}" width="${Math.max(0, WIDTH - RIGHT - x(end))}" height="${ROW - 2}" fill="#cfe9d9"/>`,
        );
      }
    });
    y += rows * ROW + GROUP_GAP + 16;
  }

  const height = y + 30;
  const axis: string[] = [];
  const stepMs = niceStep(input.durationMs);
  for (let t = 0; t <= input.durationMs; t += stepMs) {
    axis.push(
      `<line x1="${x(t)}" y1="${TOP - 6}" x2="${x(t)}" y2="${height - 30}" stroke="#e2e5ea"/>`,
      `<text x="${x(t)}" y="${height - 14}" font-size="11" text-anchor="middle" fill="#5a6372">${(t / 1000).toFixed(stepMs < 1000 ? 1 : 0)} s</text>`,
    );
  }
  const markers = input.markers.map(
    (m, i) =>
      `<line x1="${x(m.atMs)}" y1="${TOP - 10}" x2="${x(m.atMs)}" y2="${height - 30}" stroke="${m.color}" stroke-width="2" stroke-dasharray="5,3"/>` +
      `<text x="${x(m.atMs) + 4}" y="${TOP - 14 - (i % 2) * 12}" font-size="11" fill="${m.color}">${esc(m.label)}</text>`,
  );
  const legend =
    `<rect x="${LEFT}" y="34" width="10" height="8" fill="#cfe9d9"/><text x="${LEFT + 14}" y="42" font-size="11">connected</text>` +
    `<rect x="${LEFT + 90}" y="34" width="10" height="8" fill="#f0a34a"/><text x="${LEFT + 104}" y="42" font-size="11">down, then recovered</text>` +
    `<rect x="${LEFT + 240}" y="34" width="10" height="8" fill="#d2423b"/><text x="${LEFT + 254}" y="42" font-size="11">never recovered</text>`;

  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${height}" viewBox="0 0 ${WIDTH} ${height}" font-family="system-ui, sans-serif">`,
    `<rect width="100%" height="100%" fill="#fff"/>`,
    `<text x="10" y="22" font-size="15" font-weight="600">${esc(input.title)}</text>`,
    legend,
    ...axis,
    ...parts,
    ...markers,
    `</svg>`,
  ].join('\n');
}

function niceStep(durationMs: number): number {
  const target = durationMs / 10;
  for (const step of [500, 1000, 2000, 5000, 10_000, 15_000, 30_000, 60_000]) if (step >= target) return step;
  return 120_000;
}
