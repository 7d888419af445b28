// app.js — the shell: log in / register, the dashboard's panels, the live connection indicator.

import { api, onUnauthorized } from "./api.js";
import { HistoryChart } from "./chart.js";
import { ChatPanel } from "./chat.js";
import { Converter } from "./converter.js";
import { $ } from "./dom.js";
import { LiveSocket } from "./live.js";
import { RatesPanel } from "./rates.js";
import { TaskDialogs } from "./task-dialogs.js";
import { TaskBoard } from "./tasks.js";

// Only a hint that this browser logged in (the session itself is an HttpOnly cookie): without
// it the page shows the login form at once instead of asking the server and getting a 401.
const SIGNED_IN = "fxdesk:signed-in";
const FALLBACK_LOAD_MS = 4000;

const STATUS_TEXT = {
  connecting: "Connecting…",
  live: "Live",
  reconnecting: "Reconnecting…",
  offline: "Offline",
};

class App {
  constructor() {
    this.user = null;
    this.loaded = false;
    this.fallback = null;
    this.converter = new Converter();
    this.chart = new HistoryChart({ onSelect: (code, focus) => this.selectCurrency(code, focus) });
    this.rates = new RatesPanel({
      onTable: (table) => {
        this.chart.setTable(table);
        this.converter.setTable(table);
        if (this.chart.code) this.rates.highlight(this.chart.code);
      },
      onSelect: (code, focus) => this.selectCurrency(code, focus),
    });
    this.dialogs = new TaskDialogs({ onSaved: (task) => this.tasks.upsert(task, this.user) });
    this.tasks = new TaskBoard({ dialogs: this.dialogs });
    this.chat = new ChatPanel();
    this.live = new LiveSocket({
      onEvent: (event) => this.dispatch(event),
      onReload: () => this.reloadAll(),
      onStatus: (state, detail, seq) => this.showStatus(state, detail, seq),
      onRefused: () => this.sessionEnded(),
      onAccessChanged: () => this.accessChanged(),
      onError: (detail) => {
        $("chat-error").textContent = detail;
      },
    });
    onUnauthorized(() => this.sessionEnded());
    this.bindAuth();
  }

  bindAuth() {
    $("login-form").addEventListener("submit", (event) => {
      event.preventDefault();
      this.login();
    });
    $("register-form").addEventListener("submit", (event) => {
      event.preventDefault();
      this.register();
    });
    $("logout").addEventListener("click", () => this.logout());
  }

  async boot() {
    $("boot").hidden = true;
    if (!localStorage.getItem(SIGNED_IN)) {
      this.showAuth();
      return;
    }
    try {
      this.enter(await api("/auth/me"));
    } catch (error) {
      localStorage.removeItem(SIGNED_IN);
      const ended = "Your session has ended. Please log in again.";
      this.showAuth(error.status === 401 ? ended : error.detail);
    }
  }

  showAuth(notice = "") {
    $("auth-view").hidden = false;
    $("dashboard").hidden = true;
    $("section-nav").hidden = true;
    $("whoami").hidden = true;
    $("logout").hidden = true;
    $("conn").hidden = true;
    $("auth-notice").textContent = notice;
    document.title = "fxdesk — log in";
    $("login-username").focus();
  }

  /** Logged in as `user`: show the dashboard, connect, load. */
  enter(user) {
    this.user = user;
    localStorage.setItem(SIGNED_IN, "1");
    for (const panel of [this.rates, this.tasks, this.chat, this.dialogs]) panel.reset(user);
    this.chart.reset();
    this.converter.reset();
    $("auth-view").hidden = true;
    $("dashboard").hidden = false;
    $("section-nav").hidden = false;
    const who = $("whoami");
    who.textContent = `${user.username} · ${user.role}`;
    who.hidden = false;
    $("logout").hidden = false;
    $("conn").hidden = false;
    document.title = `fxdesk — ${user.username}`;
    this.loaded = false;
    this.live.start();
    // Without a live connection the page still shows the data (and says it is offline).
    clearTimeout(this.fallback);
    this.fallback = setTimeout(() => {
      if (!this.loaded) this.reloadAll();
    }, FALLBACK_LOAD_MS);
  }

  leave(notice) {
    this.user = null;
    clearTimeout(this.fallback);
    this.live.stop();
    localStorage.removeItem(SIGNED_IN);
    for (const panel of [this.rates, this.tasks, this.chat, this.dialogs]) panel.reset(null);
    this.showAuth(notice);
  }

  sessionEnded() {
    if (this.user) this.leave("Your session has ended. Please log in again.");
  }

  /** An admin changed this account: start again with what the server says it may do now. */
  async accessChanged() {
    try {
      this.enter(await api("/auth/me"));
    } catch {
      this.sessionEnded();
    }
  }

  async reloadAll() {
    this.loaded = true;
    document.body.dataset.loading = "true";
    await Promise.allSettled([this.rates.load(), this.tasks.load(), this.chat.load()]);
    delete document.body.dataset.loading;
  }

  dispatch(event) {
    const kind = event.event;
    if (kind.startsWith("task_")) this.tasks.onEvent(event);
    else if (kind.startsWith("rate")) this.rates.onEvent(event);
    else this.chat.onEvent(event);
  }

  selectCurrency(code, focusChart) {
    this.chart.show(code);
    this.rates.highlight(code);
    if (focusChart) $("history").scrollIntoView({ block: "nearest", behavior: "smooth" });
  }

  showStatus(state, detail, seq) {
    const box = $("conn");
    box.dataset.state = state;
    if (seq !== null && seq !== undefined) box.dataset.seq = String(seq);
    $("conn-text").textContent = STATUS_TEXT[state] || state;
    box.title = `Live connection: ${state}${detail ? ` (${detail})` : ""}` +
      (seq !== null && seq !== undefined ? ` · last event #${seq}` : "");
  }

  async login() {
    const username = $("login-username").value.trim();
    const password = $("login-password").value;
    const error = $("login-error");
    error.textContent = "";
    if (!username || !password) {
      error.textContent = "Enter your username and password.";
      return;
    }
    try {
      const session = await api("/auth/login", { method: "POST", body: { username, password } });
      $("login-form").reset();
      this.enter(session.user);
    } catch (failure) {
      error.textContent = failure.status === 401 ? "Wrong username or password." : failure.detail;
      $("login-password").select();
    }
  }

  async register() {
    const username = $("register-username").value.trim();
    const password = $("register-password").value;
    const error = $("register-error");
    error.textContent = "";
    if (!/^[\p{L}\p{N}\p{M}_.-]{3,32}$/u.test(username)) {
      error.textContent = "The username must be 3–32 letters, digits, “_”, “.”, “-”.";
      $("register-username").focus();
      return;
    }
    if (password.length < 8 || password.length > 64) {
      error.textContent = "The password must be 8–64 characters.";
      $("register-password").focus();
      return;
    }
    if (password !== $("register-confirm").value) {
      error.textContent = "The passwords do not match.";
      $("register-confirm").focus();
      return;
    }
    try {
      await api("/auth/register", { method: "POST", body: { username, password } });
      const session = await api("/auth/login", { method: "POST", body: { username, password } });
      $("register-form").reset();
      this.enter(session.user);
    } catch (failure) {
      error.textContent = failure.detail;
    }
  }

  async logout() {
    try {
      await api("/auth/logout", { method: "POST" });
    } finally {
      this.leave("You are logged out.");
    }
  }
}

new App().boot();
