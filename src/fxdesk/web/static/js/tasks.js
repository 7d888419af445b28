// tasks.js — the task board: filters, create, finish, reopen, delete/restore, live updates.

import { api } from "./api.js";
import { $, debounce, formatTime, h, toast } from "./dom.js";

const PAGE = 50;
const STAFF = new Set(["moderator", "admin"]);
const PRIORITY_LABEL = { low: "Low", normal: "Normal", high: "High", urgent: "Urgent" };

function stamp(iso) {
  return iso ? Date.parse(iso) : null;
}

export class TaskBoard {
  /** dialogs: {edit(task), history(task), taskChanged(task, actor)}. */
  constructor({ dialogs }) {
    this.dialogs = dialogs;
    this.user = null;
    this.tasks = new Map();
    this.deleted = new Map();
    this.cards = new Map();
    this.total = 0;
    this.loaded = false;
    this.request = 0;
    this.list = $("task-list");
    this.count = $("tasks-count");
    this.more = $("tasks-more");
    this.empty = $("tasks-empty");
    this.filterForm = $("task-filters");
    this.filterForm.addEventListener("submit", (event) => event.preventDefault());
    const reload = () => this.load();
    for (const id of ["f-status", "f-created", "f-finished", "f-sort"]) {
      $(id).addEventListener("change", reload);
    }
    $("f-q").addEventListener("input", debounce(reload, 250));
    this.more.addEventListener("click", () => this.load({ append: true }));
    $("task-create").addEventListener("submit", (event) => {
      event.preventDefault();
      this.create();
    });
  }

  get staff() {
    return Boolean(this.user && STAFF.has(this.user.role));
  }

  reset(user) {
    this.user = user;
    this.tasks.clear();
    this.deleted.clear();
    this.cards.clear();
    this.list.replaceChildren();
    this.loaded = false;
    this.total = 0;
    this.filterForm.reset();
    this.renderDeleted();
    this.count.textContent = "";
  }

  filters() {
    const me = this.user ? this.user.id : null;
    return {
      status: $("f-status").value || null,
      created_by: $("f-created").value === "me" ? me : null,
      finished_by: $("f-finished").value === "me" ? me : null,
      q: $("f-q").value.trim() || null,
      sort: $("f-sort").value,
    };
  }

  async load({ append = false } = {}) {
    const ticket = ++this.request;
    const filters = this.filters();
    let page;
    try {
      page = await api("/tasks", {
        query: { ...filters, limit: PAGE, offset: append ? this.tasks.size : 0 },
      });
    } catch (error) {
      if (ticket === this.request) {
        this.count.textContent = `Tasks are unavailable: ${error.detail}`;
      }
      return;
    }
    if (ticket !== this.request) return; // the filters changed meanwhile
    const previous = this.tasks;
    if (!append) this.tasks = new Map();
    for (const task of page.items) {
      const known = previous.get(task.id);
      // An event may have brought a newer version while the list was on its way.
      this.tasks.set(task.id, known && known.version > task.version ? known : task);
    }
    this.total = page.total;
    this.loaded = true;
    this.render();
  }

  matches(task) {
    const f = this.filters();
    if (task.deleted_at) return false;
    if (f.status && task.status !== f.status) return false;
    if (f.created_by && task.created_by.id !== f.created_by) return false;
    if (f.finished_by && (!task.finished_by || task.finished_by.id !== f.finished_by)) return false;
    if (f.q) {
      const q = f.q.toLowerCase();
      const text = `${task.title}\n${task.description}`.toLowerCase();
      if (!text.includes(q)) return false;
    }
    return true;
  }

  sorted() {
    const sort = this.filters().sort;
    const descending = sort.startsWith("-");
    const key = sort.replace(/^-/, "");
    const value = (task) => (key === "title" ? task.title.toLowerCase() : stamp(task[key]));
    const items = [...this.tasks.values()];
    items.sort((a, b) => {
      const x = value(a);
      const y = value(b);
      let order = 0;
      if (x === null && y !== null) order = -1;
      else if (y === null && x !== null) order = 1;
      else if (x < y) order = -1;
      else if (x > y) order = 1;
      if (order === 0) order = a.id - b.id;
      return descending ? -order : order;
    });
    return items;
  }

  /** A task from an event or an answer: placed, moved, updated or removed. */
  upsert(task, actor, { flash = true } = {}) {
    const known = this.tasks.get(task.id);
    const knownDeleted = this.deleted.get(task.id);
    if (known && known.version > task.version) return;
    if (knownDeleted && knownDeleted.task.version > task.version) return;
    if (task.deleted_at) {
      if (known) {
        this.tasks.delete(task.id);
        this.total = Math.max(0, this.total - 1);
      }
      if (this.staff) this.deleted.set(task.id, { task, actor });
    } else {
      this.deleted.delete(task.id);
      if (this.matches(task)) {
        if (!known) this.total += 1;
        this.tasks.set(task.id, task);
      } else if (known) {
        this.tasks.delete(task.id);
        this.total = Math.max(0, this.total - 1);
      }
    }
    this.render(flash ? task.id : null);
    this.renderDeleted();
    this.dialogs.taskChanged(task, actor);
  }

  onEvent(event) {
    if (event.task) this.upsert(event.task, event.actor);
  }

  render(flashId = null) {
    const items = this.sorted();
    const wanted = new Set(items.map((task) => task.id));
    for (const [id, card] of this.cards) {
      if (!wanted.has(id)) {
        card.remove();
        this.cards.delete(id);
      }
    }
    items.forEach((task, index) => {
      let card = this.cards.get(task.id);
      if (!card) {
        card = h("li", { class: "task", dataset: { id: String(task.id) } });
        this.cards.set(task.id, card);
      }
      if (card.dataset.version !== String(task.version)) this.fill(card, task);
      const here = this.list.children[index] || null;
      if (here !== card) this.list.insertBefore(card, here);
      if (task.id === flashId) {
        card.classList.remove("flash");
        void card.offsetWidth; // restart the animation
        card.classList.add("flash");
      }
    });
    this.empty.hidden = !this.loaded || items.length > 0;
    this.more.hidden = this.tasks.size >= this.total;
    this.count.textContent = this.loaded ? `${this.tasks.size} of ${this.total}` : "";
  }

  fill(card, task) {
    const active = document.activeElement;
    const focused = card.contains(active) ? active.dataset.action : null;
    const mine = this.user && task.created_by.id === this.user.id;
    const canEdit = this.staff || mine;
    const titleId = `task-title-${task.id}`;
    const done = task.status === "done";
    const action = (name, label, onclick, extra = "") =>
      h(
        "button",
        {
          type: "button",
          class: `btn btn-small ${extra}`.trim(),
          dataset: { action: name },
          "aria-describedby": titleId,
          onclick,
        },
        label,
      );
    card.dataset.version = String(task.version);
    card.dataset.status = task.status;
    card.className = `task task-${task.status} prio-${task.priority}`;
    const parts = [
      h(
        "div",
        { class: "task-head" },
        h("h3", { class: "task-title", id: titleId }, task.title),
        h("span", { class: `badge badge-${task.status}` }, done ? "Done" : "Open"),
        task.priority !== "normal"
          ? h("span", { class: `badge badge-prio-${task.priority}` }, PRIORITY_LABEL[task.priority])
          : null,
      ),
      task.description ? h("p", { class: "task-desc" }, task.description) : null,
      h(
        "p",
        { class: "task-meta" },
        "Created by ",
        h("span", { class: "who" }, task.created_by.username),
        ` · ${formatTime(task.created_at)} · v${task.version}`,
      ),
      done
        ? h(
            "p",
            { class: "task-finished" },
            "Done by ",
            h(
              "span",
              { class: "who finisher" },
              task.finished_by ? task.finished_by.username : "—",
            ),
            ` · ${formatTime(task.finished_at)}`,
          )
        : null,
      h(
        "div",
        { class: "task-actions" },
        done ? null : action("finish", "Finish", () => this.finish(task.id), "btn-primary"),
        done && this.staff ? action("reopen", "Reopen", () => this.act(task.id, "reopen")) : null,
        canEdit ? action("edit", "Edit", () => this.dialogs.edit(this.tasks.get(task.id))) : null,
        action("history", "History", () => this.dialogs.history(this.tasks.get(task.id))),
        this.staff ? action("delete", "Delete", () => this.remove(task.id), "btn-danger") : null,
      ),
    ];
    card.replaceChildren(...parts.filter(Boolean));
    if (focused) {
      const again = card.querySelector(`[data-action="${focused}"]`);
      (again || card.querySelector("button") || card).focus();
    }
  }

  renderDeleted() {
    const box = $("tasks-deleted");
    const entries = [...this.deleted.values()];
    box.hidden = !this.staff || entries.length === 0;
    $("tasks-deleted-count").textContent = entries.length ? `(${entries.length})` : "";
    $("tasks-deleted-list").replaceChildren(
      ...entries.map(({ task, actor }) =>
        h(
          "li",
          { dataset: { id: String(task.id) } },
          h("span", { class: "deleted-title" }, task.title),
          h("span", { class: "meta" }, actor ? ` deleted by ${actor.username}` : " deleted"),
          h(
            "button",
            {
              type: "button",
              class: "btn btn-small",
              dataset: { action: "restore" },
              onclick: () => this.act(task.id, "restore"),
            },
            "Restore",
          ),
        ),
      ),
    );
  }

  async create() {
    const title = $("new-title");
    const error = $("task-create-error");
    error.textContent = "";
    if (!title.value.trim()) {
      error.textContent = "Give the task a title.";
      title.setAttribute("aria-invalid", "true");
      title.focus();
      return;
    }
    title.removeAttribute("aria-invalid");
    try {
      const task = await api("/tasks", {
        method: "POST",
        body: {
          title: title.value,
          description: $("new-description").value,
          priority: $("new-priority").value,
        },
      });
      $("task-create").reset();
      this.upsert(task, this.user);
      title.focus();
    } catch (failure) {
      error.textContent = failure.detail;
    }
  }

  async finish(id) {
    await this.act(id, "finish");
  }

  async act(id, verb) {
    try {
      const task = await api(`/tasks/${id}/${verb}`, { method: "POST" });
      this.upsert(task, this.user);
    } catch (error) {
      toast(error.detail);
    }
  }

  async remove(id) {
    try {
      const task = await api(`/tasks/${id}`, { method: "DELETE" });
      this.upsert(task, this.user);
      const undo = { label: "Restore", run: () => this.act(id, "restore") };
      toast(`Deleted “${task.title}”.`, undo);
    } catch (error) {
      toast(error.detail);
    }
  }
}
