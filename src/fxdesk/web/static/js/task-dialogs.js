// task-dialogs.js — edit a task (showing the conflict when someone else saved first); history.

import { api } from "./api.js";
import { $, formatTime, h, toast } from "./dom.js";

const FIELDS = ["title", "description", "priority"];
const LABELS = {
  title: "Title",
  description: "Description",
  priority: "Priority",
  status: "Status",
  assignee_id: "Assignee",
  due_at: "Due",
};

function shown(value) {
  if (value === null || value === undefined || value === "") return "—";
  return String(value);
}

export class TaskDialogs {
  constructor({ onSaved }) {
    this.onSaved = onSaved;
    this.user = null;
    this.task = null; // the version the edit started from (or was reloaded to)
    this.current = null; // a newer version saved by someone else, while unresolved
    this.saving = false;
    this.dialog = $("task-dialog");
    this.form = $("task-edit");
    this.conflict = $("te-conflict");
    this.error = $("te-error");
    this.save = $("te-save");
    this.form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.submit(false);
    });
    $("te-cancel").addEventListener("click", () => this.dialog.close());
    $("te-reload").addEventListener("click", () => this.reloadTheirs());
    $("te-overwrite").addEventListener("click", () => this.submit(true));
    this.dialog.addEventListener("close", () => {
      this.task = null;
      this.current = null;
    });
    this.historyDialog = $("history-dialog");
    $("hd-close").addEventListener("click", () => this.historyDialog.close());
  }

  reset(user) {
    this.user = user;
    if (this.dialog.open) this.dialog.close();
    if (this.historyDialog.open) this.historyDialog.close();
  }

  values() {
    return {
      title: $("te-title").value,
      description: $("te-description").value,
      priority: $("te-priority").value,
    };
  }

  fillForm(task) {
    $("te-title").value = task.title;
    $("te-description").value = task.description;
    $("te-priority").value = task.priority;
  }

  edit(task) {
    if (!task) return;
    this.task = task;
    this.current = null;
    this.fillForm(task);
    this.conflict.hidden = true;
    this.error.textContent = "";
    this.save.disabled = false;
    $("te-heading").textContent = `Edit “${task.title}”`;
    this.dialog.showModal();
    $("te-title").focus();
  }

  /** Every task change seen live: a newer version of the task being edited is a conflict. */
  taskChanged(task, actor) {
    if (!this.dialog.open || !this.task || task.id !== this.task.id) return;
    if (task.version <= this.task.version) return;
    if (this.saving && actor && this.user && actor.id === this.user.id) return; // our own save
    this.showConflict(task, actor ? actor.username : null);
  }

  showConflict(current, who) {
    this.current = current;
    this.conflict.hidden = false;
    this.save.disabled = true;
    const name = who || "Someone";
    const text = current.deleted_at
      ? `${name} deleted this task while you were editing it.`
      : `${name} saved a newer version (v${current.version}) while you were editing. ` +
        "Their version:";
    $("te-conflict-text").textContent = text;
    $("te-theirs").replaceChildren(
      ...(current.deleted_at
        ? []
        : [...FIELDS, "status"].flatMap((field) => [
            h("dt", {}, LABELS[field]),
            h("dd", { dataset: { field } }, shown(current[field])),
          ])),
    );
    $("te-reload").hidden = Boolean(current.deleted_at);
    $("te-overwrite").hidden = Boolean(current.deleted_at);
    if (!who) this.whoSaved(current);
  }

  /** After a 412 the answer has their version but not their name: the history has it. */
  async whoSaved(current) {
    try {
      const entries = await api(`/tasks/${current.id}/history`);
      const last = entries[entries.length - 1];
      if (last && this.current === current) this.showConflict(current, last.actor.username);
    } catch {
      // the name is a nicety; the conflict is shown either way
    }
  }

  reloadTheirs() {
    if (!this.current) return;
    this.task = this.current;
    this.current = null;
    this.fillForm(this.task);
    this.conflict.hidden = true;
    this.save.disabled = false;
    $("te-title").focus();
  }

  async submit(overwrite) {
    if (!this.task || this.saving) return;
    if (this.current && !overwrite) return; // resolve the conflict first
    const base = overwrite && this.current ? this.current : this.task;
    const values = this.values();
    if (!values.title.trim()) {
      this.error.textContent = "The title must not be empty.";
      $("te-title").focus();
      return;
    }
    const changes = {};
    for (const field of FIELDS) {
      if (values[field] !== base[field]) changes[field] = values[field];
    }
    if (!Object.keys(changes).length) {
      this.dialog.close();
      return;
    }
    this.error.textContent = "";
    this.saving = true;
    try {
      const task = await api(`/tasks/${base.id}`, {
        method: "PATCH",
        body: changes,
        headers: { "If-Match": `"${base.version}"` },
      });
      this.dialog.close();
      this.onSaved(task);
      toast(`Saved “${task.title}”.`);
    } catch (error) {
      if (error.status === 412 && error.body && error.body.current) {
        this.showConflict(error.body.current, null);
      } else {
        this.error.textContent = error.detail;
      }
    } finally {
      this.saving = false;
    }
  }

  async history(task) {
    if (!task) return;
    $("hd-heading").textContent = `History of “${task.title}”`;
    const list = $("hd-list");
    list.replaceChildren(h("li", { class: "meta" }, "Loading…"));
    this.historyDialog.showModal();
    $("hd-close").focus();
    let entries;
    try {
      entries = await api(`/tasks/${task.id}/history`);
    } catch (error) {
      list.replaceChildren(h("li", { class: "form-error" }, error.detail));
      return;
    }
    list.replaceChildren(
      ...entries.map((entry) =>
        h(
          "li",
          { class: "history-entry" },
          h("time", { datetime: entry.at }, formatTime(entry.at)),
          " ",
          h("span", { class: "who" }, entry.actor.username),
          ` ${entry.action}`,
          Object.keys(entry.changes).length
            ? h(
                "ul",
                { class: "changes" },
                ...Object.entries(entry.changes).map(([field, [before, after]]) =>
                  h(
                    "li",
                    {},
                    `${LABELS[field] || field}: `,
                    h("del", {}, shown(before)),
                    " → ",
                    h("ins", {}, shown(after)),
                  ),
                ),
              )
            : null,
        ),
      ),
    );
  }
}
