/**
 * The browser demo: one page, one SDK client, one session at a time. Everything the page shows comes
 * from the SDK's events (joined, remoteTrack, reconnecting...), so it doubles as a live picture of the
 * failover story: the region and server change under a running call and the log says why, and each
 * remote tile names the region its peer is in, so a region's failure shows on the tiles of that region's
 * peers alone.
 *
 * Served and bundled by runtime/local/demoServer.ts; the page's query string may preset `room`,
 * `name` and `near` (the region this browser pretends to be closest to).
 */
import {
  Client,
  type ClientConfigInput,
  type MediaKind,
  type RemoteTrackEvent,
  type Session,
  type TrackEndedEvent,
} from '../index';

/** The log is for a human watching the call; older lines scroll away. */
const MAX_LOG_LINES = 200;

type LogTone = 'info' | 'good' | 'warn' | 'error';

function byId<T extends HTMLElement>(id: string): T {
  const element = document.getElementById(id);
  if (!element) throw new Error(`demo page is missing #${id}`);
  return element as T;
}

const ui = {
  form: byId<HTMLFormElement>('join-form'),
  room: byId<HTMLInputElement>('room'),
  name: byId<HTMLInputElement>('name'),
  join: byId<HTMLButtonElement>('join'),
  leave: byId<HTMLButtonElement>('leave'),
  cameraOff: byId<HTMLInputElement>('camera-off'),
  micOff: byId<HTMLInputElement>('mic-off'),
  state: byId('state'),
  region: byId('region'),
  server: byId('server'),
  api: byId('api'),
  rtts: byId('rtts'),
  localVideo: byId<HTMLVideoElement>('local'),
  localName: byId('local-name'),
  videos: byId('videos'),
  noRemotes: byId('no-remotes'),
  log: byId<HTMLUListElement>('log'),
};

const params = new URLSearchParams(location.search);
ui.room.value = params.get('room') ?? 'demo';
ui.name.value = params.get('name') ?? `guest-${Math.random().toString(36).slice(2, 6)}`;
const near = params.get('near');
/** `?relay=1`: media only through the region's TURN relay, as on a network that allows nothing else. */
const forceRelay = params.get('relay') === '1';

let client: Client | undefined;
let session: Session | undefined;
let camera: MediaStream | undefined;

function log(text: string, tone: LogTone = 'info'): void {
  const item = document.createElement('li');
  item.className = tone;
  const time = document.createElement('time');
  time.textContent = new Date().toLocaleTimeString();
  item.append(time, text);
  ui.log.prepend(item);
  while (ui.log.children.length > MAX_LOG_LINES) ui.log.lastElementChild?.remove();
}

function showState(state: string): void {
  document.body.dataset.state = state;
  ui.state.textContent = state;
}

function showPlacement(region: string, serverId: string, apiUrl: string): void {
  ui.region.textContent = region;
  ui.server.textContent = serverId;
  ui.api.textContent = apiUrl;
  // Which remote peers are in another region than this page's changes with it.
  for (const tile of tiles.values()) labelTile(tile);
}

async function fetchJson<T>(url: string): Promise<T> {
  const response = await fetch(url, { cache: 'no-store' });
  const body = (await response.json().catch(() => null)) as { error?: { message?: string } } | null;
  if (!response.ok) throw new Error(body?.error?.message ?? `${url} answered ${response.status}`);
  return body as T;
}

/** The config is per page load: the stack's addresses do not change while it runs. */
async function ensureClient(): Promise<Client> {
  if (client) return client;
  const config = await fetchJson<ClientConfigInput>(
    `config.json${near ? `?near=${encodeURIComponent(near)}` : ''}`,
  );
  const created = new Client(forceRelay ? { ...config, iceTransportPolicy: 'relay' } : config);
  if (forceRelay) log('media forced through the TURN relay (iceTransportPolicy relay)');
  created.api.on('switched', ({ from, to, reason }) =>
    log(`API moved from ${from} to ${to} (${reason.replace('_', ' ')})`, 'warn'),
  );
  created.election?.on('elected', ({ ranking }) => {
    ui.rtts.textContent =
      ranking.map((r) => `${r.region} ${r.rttMs === null ? '—' : `${r.rttMs.toFixed(1)} ms`}`).join(', ') ||
      '—';
  });
  client = created;
  return created;
}

/** The camera survives leaving and joining again; a page without one joins to watch only. */
async function ensureCamera(): Promise<MediaStream | undefined> {
  if (camera) return camera;
  try {
    camera = await navigator.mediaDevices.getUserMedia({ video: { width: 640, height: 360 }, audio: true });
    ui.localVideo.srcObject = camera;
  } catch (err) {
    log(`no camera or microphone (${(err as Error).message}): joining to watch only`, 'warn');
  }
  return camera;
}

// ---- remote tiles: one per remote participant, its audio and video in one stream --------------------
//
// A tile belongs to a participant (its identity), not to one peer id: a peer whose region fails rejoins
// elsewhere under a new peer id, and its tile should come back in place, with its new region. Its label
// says who and where ("bob · eu-west-1") and how its media is doing, so a region failure reads off the
// page: the tiles of peers in healthy regions keep playing (`live`), the tile of a peer of the failed
// region says it was lost with that region, then shows the region it came back in.

/** How long the tile of a lost peer waits for that peer to come back before it goes. */
const LOST_TILE_MS = 30_000;
/** A tile's video counts as stalled when it decoded no new frame for this long. */
const STALL_AFTER_MS = 2_000;

interface RemoteTile {
  readonly figure: HTMLElement;
  video: HTMLVideoElement;
  readonly label: HTMLElement;
  readonly status: HTMLElement;
  readonly tracks: Map<string, RemoteTrackEvent>;
  /** Who: the identity (the peer id for a server that does not send identities). */
  readonly who: string;
  peerId: string;
  region: string | undefined;
  /** Set while the peer is lost: removes the tile if the peer does not come back. */
  lostTimer: ReturnType<typeof setTimeout> | undefined;
  /** Decoded frames at the last check, and when they last grew. */
  frames: number;
  framesAt: number;
}

const tiles = new Map<string, RemoteTile>();

function whoOf(peer: { peerId: string; identity: string | undefined }): string {
  return peer.identity ?? peer.peerId;
}

function newVideo(): HTMLVideoElement {
  const video = document.createElement('video');
  video.autoplay = true;
  video.playsInline = true;
  return video;
}

function tileFor(who: string): RemoteTile {
  let tile = tiles.get(who);
  if (tile) return tile;
  const figure = document.createElement('figure');
  figure.className = 'remote';
  const video = newVideo();
  const caption = document.createElement('figcaption');
  const label = document.createElement('span');
  label.className = 'label';
  const status = document.createElement('span');
  status.className = 'tile-status';
  caption.append(label, status);
  figure.append(video, caption);
  ui.videos.append(figure);
  tile = {
    figure,
    video,
    label,
    status,
    tracks: new Map(),
    who,
    peerId: '',
    region: undefined,
    lostTimer: undefined,
    frames: 0,
    framesAt: Date.now(),
  };
  tiles.set(who, tile);
  ui.noRemotes.hidden = true;
  return tile;
}

/** The label ("bob · eu-west-1") and the peer the tile shows now. */
function labelTile(tile: RemoteTile): void {
  tile.figure.dataset.peer = tile.peerId;
  tile.figure.dataset.region = tile.region ?? '';
  tile.label.textContent = tile.region ? `${tile.who} · ${tile.region}` : tile.who;
  tile.figure.classList.toggle(
    'other-region',
    tile.region !== undefined && tile.region !== ui.region.textContent,
  );
}

/** `live`, `stalled`, `camera off`, `lost`: the tile's state, as a class and a word in its caption. */
function showTileState(tile: RemoteTile, state: string, text: string): void {
  tile.figure.dataset.state = state;
  tile.status.textContent = text;
}

function attach(tile: RemoteTile): void {
  // A fresh stream per change: Chromium does not always re-render when tracks are added to a playing one.
  tile.video.srcObject = new MediaStream([...tile.tracks.values()].map((t) => t.track));
  tile.video.play().catch(() => {
    // Autoplay with sound needs a user gesture; play muted rather than show a frozen picture.
    tile.video.muted = true;
    void tile.video.play().catch(() => undefined);
  });
}

function addRemoteTrack(event: RemoteTrackEvent): void {
  const tile = tileFor(whoOf(event));
  if (tile.peerId !== event.peerId) {
    // This participant's new peer (a first join, or a rejoin after its region or server failed).
    const wasLost = tile.lostTimer !== undefined;
    const from = tile.region;
    clearTimeout(tile.lostTimer);
    tile.lostTimer = undefined;
    tile.tracks.clear();
    tile.figure.classList.remove('paused');
    // A new peer gets a new player: the old one's frozen last frame is not this peer's.
    const video = newVideo();
    tile.video.replaceWith(video);
    tile.video = video;
    tile.peerId = event.peerId;
    tile.region = event.region;
    tile.frames = 0;
    tile.framesAt = Date.now();
    if (wasLost) {
      log(
        `${tile.who} is back, now in ${event.region ?? 'an unknown region'}` +
          (from && from !== event.region ? ` (was ${from})` : ''),
        'good',
      );
    }
    showTileState(tile, 'live', 'live');
  }
  labelTile(tile);
  tile.tracks.set(event.consumerId, event);
  attach(tile);
}

function removeTile(tile: RemoteTile): void {
  clearTimeout(tile.lostTimer);
  tile.figure.remove();
  tiles.delete(tile.who);
  ui.noRemotes.hidden = tiles.size > 0;
}

function removeRemoteTrack(event: TrackEndedEvent): void {
  const tile = tiles.get(whoOf(event));
  // A stale end (this participant's older peer) changes nothing.
  if (!tile || tile.peerId !== event.peerId || !tile.tracks.delete(event.consumerId)) return;
  if (tile.tracks.size > 0) {
    attach(tile);
    return;
  }
  if (event.reason !== 'peer_lost') {
    removeTile(tile);
    return;
  }
  // Its leg in another region was cut off: keep the tile, say so, and wait for the peer to come back.
  showTileState(tile, 'lost', `lost with ${event.region ?? 'its region'}: rejoining…`);
  tile.lostTimer = setTimeout(() => {
    log(`${tile.who} did not come back within ${LOST_TILE_MS / 1000} s`, 'warn');
    removeTile(tile);
  }, LOST_TILE_MS);
}

function clearRemoteTiles(): void {
  for (const tile of [...tiles.values()]) removeTile(tile);
  ui.noRemotes.hidden = false;
}

/** Once a second: is each tile's video still decoding new frames? */
function checkTilesPlaying(): void {
  const now = Date.now();
  for (const tile of tiles.values()) {
    if (tile.lostTimer !== undefined) continue;
    const hasVideo = [...tile.tracks.values()].some((t) => t.kind === 'video');
    if (!hasVideo || tile.figure.classList.contains('paused')) {
      showTileState(tile, 'camera-off', 'camera off');
      continue;
    }
    const frames = tile.video.getVideoPlaybackQuality().totalVideoFrames;
    if (frames > tile.frames) {
      tile.frames = frames;
      tile.framesAt = now;
    }
    const stalledMs = now - tile.framesAt;
    if (stalledMs < STALL_AFTER_MS) showTileState(tile, 'live', 'live');
    else showTileState(tile, 'stalled', `no video for ${Math.round(stalledMs / 1000)} s`);
  }
}
setInterval(checkTilesPlaying, 1_000);

/** "bob (eu-west-1)" for the log. */
function describePeer(peer: {
  peerId: string;
  identity: string | undefined;
  region: string | undefined;
}): string {
  return `${whoOf(peer)}${peer.region ? ` (${peer.region})` : ''}`;
}

// ---- the session --------------------------------------------------------------------------------

function watch(current: Session): void {
  current.on('joined', ({ region, serverId, apiUrl, peerId }) => {
    showState('connected');
    showPlacement(region, serverId, apiUrl);
    log(`joined room "${current.roomId}" as ${peerId} on ${serverId} (${region}) via ${apiUrl}`, 'good');
  });
  current.on('reconnecting', ({ reason, attempt, delayMs, exclude }) => {
    showState('reconnecting');
    const excluded = [...exclude.serverIds, ...exclude.regions];
    log(
      `connection lost (${reason.replace(/_/g, ' ')}): rejoin attempt ${attempt} in ${delayMs} ms` +
        (excluded.length > 0 ? `, avoiding ${excluded.join(', ')}` : ''),
      'warn',
    );
  });
  current.on('suspected', ({ serverId, region, signal, evidence }) => {
    log(
      `failure detected by ${signal.replace(/_/g, ' ')} on ${serverId} (${region}): ${evidence.join(', ')}; switching`,
      'warn',
    );
  });
  current.on('switchCancelled', ({ serverId, afterMs }) =>
    log(`${serverId} answered again after ${afterMs} ms: switch dropped`),
  );
  current.on('reconnected', ({ region, serverId, apiUrl, downtimeMs, attempts, mode, reason, rejoinMs }) => {
    showState('connected');
    showPlacement(region, serverId, apiUrl);
    log(
      `reconnected on ${serverId} (${region}) after ${downtimeMs} ms, ${attempts} attempt${attempts === 1 ? '' : 's'}` +
        (mode === 'switch'
          ? ` (make-before-break switch detected by ${reason.replace(/_/g, ' ')}; new server ready in ${rejoinMs} ms)`
          : ''),
      'good',
    );
  });
  current.on('remoteTrack', (event) => {
    addRemoteTrack(event);
    log(`receiving ${event.kind} from ${describePeer(event)}`);
  });
  current.on('trackEnded', (event) => {
    removeRemoteTrack(event);
    const { kind, reason } = event;
    // A rejoin ends every remote track at once; the log line for the outage already says so.
    if (reason === 'peer_lost') {
      log(`${kind} of ${describePeer(event)} lost: that region's leg of the room is gone`, 'warn');
    } else if (reason !== 'reconnecting' && reason !== 'closed') {
      log(`${kind} of ${describePeer(event)} ended (${reason.replace(/_/g, ' ')})`);
    }
  });
  current.on('remotePaused', (event) => {
    const { kind, paused } = event;
    const tile = tiles.get(whoOf(event));
    if (tile?.peerId === event.peerId && kind === 'video') tile.figure.classList.toggle('paused', paused);
    log(`${describePeer(event)} turned ${kind === 'video' ? 'camera' : 'mic'} ${paused ? 'off' : 'on'}`);
  });
  current.on('warning', ({ message }) => log(message, 'warn'));
  current.on('error', ({ error }) => log(error.message, 'error'));
  current.on('closed', ({ reason, error }) => {
    showState('closed');
    clearRemoteTiles();
    ui.join.disabled = false;
    ui.leave.disabled = true;
    log(
      reason === 'left' ? 'left the room' : `session ended: ${error?.message ?? 'failed'}`,
      reason === 'left' ? 'info' : 'error',
    );
  });
}

async function join(): Promise<void> {
  const room = ui.room.value.trim();
  const name = ui.name.value.trim();
  ui.join.disabled = true;
  showState('joining');
  ui.localName.textContent = name;
  try {
    const sdk = await ensureClient();
    const media = await ensureCamera();
    const produce = { video: media?.getVideoTracks()[0], audio: media?.getAudioTracks()[0] };
    // The token source runs before every join and rejoin, so a long call never rejoins with an expired token.
    const token = async () =>
      (
        await fetchJson<{ token: string }>(
          `token?room=${encodeURIComponent(room)}&sub=${encodeURIComponent(name)}`,
        )
      ).token;
    const current = sdk.joinRoom(room, token, { produce, displayName: name });
    session = current;
    watch(current);
    ui.leave.disabled = false;
    await current.ready;
    // Apply the checkboxes' state: mute is idempotent, so setting it again is harmless.
    await Promise.all([setMuted('video', ui.cameraOff.checked), setMuted('audio', ui.micOff.checked)]);
  } catch (err) {
    log(`could not join: ${(err as Error).message}`, 'error');
    showState('closed');
    ui.join.disabled = false;
    ui.leave.disabled = true;
  }
}

async function setMuted(kind: MediaKind, muted: boolean): Promise<void> {
  const track = kind === 'video' ? camera?.getVideoTracks()[0] : camera?.getAudioTracks()[0];
  if (track) track.enabled = !muted;
  if (!session || session.connectionState === 'closed') return;
  await session.setMuted(kind, muted).catch((err: Error) => log(`${kind} mute: ${err.message}`, 'error'));
}

ui.form.addEventListener('submit', (event) => {
  event.preventDefault();
  void join();
});
ui.leave.addEventListener('click', () => {
  ui.leave.disabled = true;
  void session?.leave();
});
ui.cameraOff.addEventListener('change', () => void setMuted('video', ui.cameraOff.checked));
ui.micOff.addEventListener('change', () => void setMuted('audio', ui.micOff.checked));
window.addEventListener('pagehide', () => void client?.close());

log('ready: pick a room and join');
