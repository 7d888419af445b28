// chat.js — the general chat: history (newest 50, older on demand), live lines, send, delete.

import { api } from "./api.js";
import { $, formatClock, formatTime, h } from "./dom.js";

const PAGE = 50;
const STAFF = new Set(["moderator", "admin"]);

export class ChatPanel {
  constructor() {
    this.user = null;
    this.messages = new Map();
    this.notices = []; // "alice joined the chat": live only, placed after the last message
    this.hasMore = false;
    this.log = $("chat-log");
    this.older = $("chat-older");
    this.input = $("chat-text");
    this.error = $("chat-error");
    $("chat-form").addEventListener("submit", (event) => {
      event.preventDefault();
      this.send();
    });
    this.older.addEventListener("click", () => this.loadOlder());
  }

  reset(user) {
    this.user = user;
    this.messages.clear();
    this.notices = [];
    this.log.replaceChildren();
    this.older.hidden = true;
    this.error.textContent = "";
  }

  async load() {
    let page;
    try {
      page = await api("/chat/messages", { query: { limit: PAGE } });
    } catch (error) {
      this.error.textContent = `Chat history is unavailable: ${error.detail}`;
      return;
    }
    this.messages.clear();
    for (const message of page.items) this.messages.set(message.id, message);
    this.hasMore = page.has_more;
    this.render({ stick: true });
  }

  async loadOlder() {
    const oldest = Math.min(...this.messages.keys());
    if (!Number.isFinite(oldest)) return;
    try {
      const page = await api("/chat/messages", { query: { before: oldest, limit: PAGE } });
      for (const message of page.items) this.messages.set(message.id, message);
      this.hasMore = page.has_more;
      const height = this.log.scrollHeight;
      this.render({ stick: false });
      this.log.scrollTop += this.log.scrollHeight - height; // keep the reader's place
    } catch (error) {
      this.error.textContent = error.detail;
    }
  }

  nearBottom() {
    return this.log.scrollHeight - this.log.scrollTop - this.log.clientHeight < 60;
  }

  render({ stick }) {
    const follow = stick || this.nearBottom();
    const items = [...this.messages.values(), ...this.notices].sort((a, b) => a.id - b.id);
    this.log.replaceChildren(...items.map((message) => this.line(message)));
    this.older.hidden = !this.hasMore;
    if (follow) this.log.scrollTop = this.log.scrollHeight;
  }

  line(message) {
    if (message.system) {
      return h("li", { class: "chat-line chat-system" }, message.text);
    }
    const mine = this.user && message.author.id === this.user.id;
    const canDelete = mine || (this.user && STAFF.has(this.user.role));
    return h(
      "li",
      { class: `chat-line${mine ? " mine" : ""}`, dataset: { id: String(message.id) } },
      h(
        "div",
        { class: "chat-head" },
        h("span", { class: "who" }, message.author.username),
        h(
          "time",
          { datetime: message.created_at, title: formatTime(message.created_at) },
          formatClock(message.created_at),
        ),
        canDelete
          ? h(
              "button",
              {
                type: "button",
                class: "chat-delete",
                "aria-label": `Delete the message of ${formatClock(message.created_at)}`,
                title: "Delete",
                onclick: () => this.remove(message.id),
              },
              "×",
            )
          : null,
      ),
      h("p", { class: "chat-text" }, message.text),
    );
  }

  onEvent(event) {
    if (event.event === "chat_message" && event.author) {
      this.messages.set(event.id, {
        id: event.id,
        text: event.text,
        author: event.author,
        created_at: event.created_at,
      });
      this.render({ stick: false });
    } else if (event.event === "chat_deleted") {
      if (this.messages.delete(event.id)) this.render({ stick: false });
    } else if (event.event === "user_joined" || event.event === "user_left") {
      const verb = event.event === "user_joined" ? "joined" : "left";
      const last = Math.max(0, ...this.messages.keys());
      const text = `${event.user.username} ${verb} the chat`;
      this.notices.push({ id: last + 0.5, system: true, text });
      this.render({ stick: false });
    }
  }

  async send() {
    const text = this.input.value.trim();
    if (!text) return;
    this.error.textContent = "";
    try {
      const message = await api("/chat/messages", { method: "POST", body: { text } });
      this.input.value = "";
      this.messages.set(message.id, message);
      this.render({ stick: true });
    } catch (error) {
      this.error.textContent = error.detail;
    }
  }

  async remove(id) {
    try {
      await api(`/chat/messages/${id}`, { method: "DELETE" });
      this.messages.delete(id);
      this.render({ stick: false });
    } catch (error) {
      this.error.textContent = error.detail;
    }
  }
}
