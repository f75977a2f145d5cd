/**
 * The browser demo: one page, one SDK client, one session at a time. Everything the page shows comes
 * from the SDK's events (joined, remoteTrack, reconnecting...), so it doubles as a live picture of the
 * failover story: the region and server change under a running call and the log says why.
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

// ---- remote tiles: one per remote peer, its audio and video in one stream ---------------------------

interface RemoteTile {
  readonly figure: HTMLElement;
  readonly video: HTMLVideoElement;
  readonly tracks: Map<string, RemoteTrackEvent>;
}

const tiles = new Map<string, RemoteTile>();

function tileFor(peerId: string): RemoteTile {
  let tile = tiles.get(peerId);
  if (tile) return tile;
  const figure = document.createElement('figure');
  figure.className = 'remote';
  figure.dataset.peer = peerId;
  const video = document.createElement('video');
  video.autoplay = true;
  video.playsInline = true;
  const caption = document.createElement('figcaption');
  caption.textContent = `peer ${peerId}`;
  figure.append(video, caption);
  ui.videos.append(figure);
  tile = { figure, video, tracks: new Map() };
  tiles.set(peerId, tile);
  ui.noRemotes.hidden = true;
  return tile;
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
  const tile = tileFor(event.peerId);
  tile.tracks.set(event.consumerId, event);
  attach(tile);
}

function removeRemoteTrack(peerId: string, consumerId: string): void {
  const tile = tiles.get(peerId);
  if (!tile?.tracks.delete(consumerId)) return;
  if (tile.tracks.size > 0) {
    attach(tile);
    return;
  }
  tile.figure.remove();
  tiles.delete(peerId);
  ui.noRemotes.hidden = tiles.size > 0;
}

function clearRemoteTiles(): void {
  for (const tile of tiles.values()) tile.figure.remove();
  tiles.clear();
  ui.noRemotes.hidden = false;
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
    log(`receiving ${event.kind} from peer ${event.peerId}`);
  });
  current.on('trackEnded', ({ peerId, consumerId, kind, reason }) => {
    removeRemoteTrack(peerId, consumerId);
    // A rejoin ends every remote track at once; the log line for the outage already says so.
    if (reason !== 'reconnecting' && reason !== 'closed') log(`${kind} of peer ${peerId} ended (${reason})`);
  });
  current.on('remotePaused', ({ peerId, kind, paused }) => {
    tiles.get(peerId)?.figure.classList.toggle('paused', paused && kind === 'video');
    log(`peer ${peerId} turned ${kind === 'video' ? 'camera' : 'mic'} ${paused ? 'off' : 'on'}`);
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
