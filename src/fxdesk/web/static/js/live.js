// live.js — the live socket (WS /api/v1/ws): subscribe with `since`, remember the last `seq`,
// reload on `resync`, keep-alive pings, automatic reconnect with backoff.

const CHANNELS = ["rates", "tasks", "chat"];
const PING_EVERY_MS = 20000;
const SILENT_LIMIT_MS = 50000;
const RETRY_MIN_MS = 400;
const RETRY_MAX_MS = 15000;
const CLOSE_POLICY = 1008;
const CLOSE_SESSION_ENDED = 4401; // logged out (here or elsewhere), expired, or deactivated
const CLOSE_ACCESS_CHANGED = 4403; // the account's role changed: reload it, then reconnect

export class LiveSocket {
  /**
   * onEvent(envelope): every event, once, in order.
   * onReload(): the page must (re)load its data with REST (first connect, or after `resync`).
   * onStatus(state, detail): "connecting" | "live" | "reconnecting" | "offline".
   * onRefused(): the server refused or ended the session (close 1008 or 4401).
   * onAccessChanged(): the account's role or state changed (close 4403).
   * onError(detail): an error answer on the socket.
   */
  constructor({ onEvent, onReload, onStatus, onRefused, onAccessChanged, onError }) {
    Object.assign(this, { onEvent, onReload, onStatus, onRefused, onAccessChanged, onError });
    this.lastSeq = null;
    this.ws = null;
    this.running = false;
    this.attempt = 0;
    this.retryTimer = null;
    this.pingTimer = null;
    this.lastHeard = 0;
    this.state = "offline";
    window.addEventListener("online", () => this.reconnectNow());
  }

  start() {
    this.stop(); // one connection at a time, whatever came before
    this.running = true;
    this.lastSeq = null;
    this.attempt = 0;
    this.connect();
  }

  stop() {
    this.running = false;
    clearTimeout(this.retryTimer);
    clearInterval(this.pingTimer);
    if (this.ws) {
      const ws = this.ws;
      this.ws = null;
      ws.onclose = null;
      ws.onmessage = null;
      ws.close(1000, "logged out");
    }
    this.setState("offline");
  }

  setState(state, detail = "") {
    this.state = state;
    this.onStatus(state, detail, this.lastSeq);
  }

  connect() {
    clearTimeout(this.retryTimer);
    if (!this.running) return;
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    this.setState(this.attempt === 0 && this.lastSeq === null ? "connecting" : "reconnecting");
    const ws = new WebSocket(`${scheme}//${location.host}/api/v1/ws`);
    this.ws = ws;
    ws.onmessage = (message) => {
      if (this.ws === ws) this.receive(message.data);
    };
    ws.onclose = (event) => {
      if (this.ws === ws) this.closed(event);
    };
  }

  send(message) {
    if (this.ws && this.ws.readyState === WebSocket.OPEN) {
      this.ws.send(JSON.stringify(message));
      return true;
    }
    return false;
  }

  receive(text) {
    this.lastHeard = Date.now();
    let message;
    try {
      message = JSON.parse(text);
    } catch {
      return;
    }
    if (message.event) {
      if (this.lastSeq !== null && message.seq <= this.lastSeq) return; // seen already
      this.lastSeq = message.seq;
      this.onStatus(this.state, "", this.lastSeq);
      this.onEvent(message);
      return;
    }
    switch (message.type) {
      case "hello": {
        // First connection: start at the server's position and load the data with REST
        // once subscribed. Later ones: resume after the last event seen.
        const fresh = this.lastSeq === null;
        if (fresh) this.lastSeq = message.seq;
        this.fresh = fresh;
        this.send({ op: "subscribe", channels: CHANNELS, since: this.lastSeq });
        break;
      }
      case "subscribed":
        this.attempt = 0;
        this.startPings();
        this.setState("live");
        if (this.fresh) {
          this.fresh = false;
          this.onReload("connected");
        }
        break;
      case "resync":
        // `since` is older than the server keeps: reload everything, then continue live.
        this.lastSeq = message.seq;
        this.attempt = 0;
        this.fresh = false;
        this.startPings();
        this.setState("live");
        this.onReload("resync");
        break;
      case "error":
        if (this.onError) this.onError(message.detail);
        break;
      default:
        break; // pong
    }
  }

  startPings() {
    clearInterval(this.pingTimer);
    this.pingTimer = setInterval(() => {
      if (Date.now() - this.lastHeard > SILENT_LIMIT_MS && this.ws) {
        this.ws.close(4000, "silent"); // a dead connection: start over
        return;
      }
      this.send({ op: "ping" });
    }, PING_EVERY_MS);
  }

  closed(event) {
    clearInterval(this.pingTimer);
    this.ws = null;
    if (!this.running) return;
    if (event.code === CLOSE_POLICY || event.code === CLOSE_SESSION_ENDED) {
      this.running = false;
      this.setState("offline");
      this.onRefused();
      return;
    }
    if (event.code === CLOSE_ACCESS_CHANGED) {
      this.running = false;
      this.setState("offline");
      this.onAccessChanged();
      return;
    }
    const base = Math.min(RETRY_MAX_MS, RETRY_MIN_MS * 2 ** this.attempt);
    const delay = Math.round(base * (0.5 + Math.random() / 2));
    this.attempt += 1;
    this.setState("reconnecting", `in ${Math.ceil(delay / 1000)} s`);
    this.retryTimer = setTimeout(() => this.connect(), delay);
  }

  reconnectNow() {
    if (this.running && !this.ws) {
      this.attempt = 0;
      this.connect();
    }
  }
}
