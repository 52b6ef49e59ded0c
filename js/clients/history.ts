// History panel: revisions newest first with message, time and rows changed; undo/redo
// live in the toolbar, here each older revision has a "revert" button.
import { formatCount, formatTime } from "../format";
import type { HistoryRow } from "../types";

export interface HistoryOptions {
  onRevert: (revision: number) => void;
}

export class History {
  #opts: HistoryOptions;
  #root: HTMLDivElement;
  #list: HTMLOListElement;
  #rows: HistoryRow[] = [];
  #current = -1;

  constructor(options: HistoryOptions) {
    this.#opts = options;
    this.#root = document.createElement("div");
    this.#root.className = "ww-history";
    const title = document.createElement("div");
    title.className = "ww-panel-title";
    title.textContent = "History";
    this.#list = document.createElement("ol");
    this.#list.className = "ww-revs";
    this.#root.append(title, this.#list);
  }

  node(): HTMLElement {
    return this.#root;
  }

  update(next: { history?: HistoryRow[]; revision?: number }): void {
    if (next.history !== undefined) this.#rows = next.history;
    if (next.revision !== undefined && next.revision !== this.#current) {
      this.#current = next.revision;
      this.#list.scrollTop = 0; // the newest revision is on top: show it
    }
    const items = [...this.#rows].reverse().map((h) => {
      const li = document.createElement("li");
      li.className = "ww-rev" + (h.revision === this.#current ? " ww-current" : "");
      li.dataset.revision = String(h.revision);
      const num = document.createElement("span");
      num.className = "ww-rev-num";
      num.textContent = `r${h.revision}`;
      const msg = document.createElement("span");
      msg.className = "ww-rev-msg";
      msg.textContent = h.message || "(no message)";
      msg.title = `${h.message}\nby ${h.author} at ${h.created}`;
      const meta = document.createElement("span");
      meta.className = "ww-rev-meta";
      meta.textContent = `${formatTime(h.created)} · ${formatCount(h.rows_changed)} ${h.rows_changed === 1 ? "row" : "rows"} changed`;
      li.append(num, msg, meta);
      if (h.revision !== this.#current) {
        const b = document.createElement("button");
        b.type = "button";
        b.className = "ww-btn ww-revert";
        b.textContent = "revert";
        b.title = `restore the weights of r${h.revision} (as a new revision)`;
        b.addEventListener("click", () => this.#opts.onRevert(h.revision));
        li.append(b);
      } else {
        const cur = document.createElement("span");
        cur.className = "ww-rev-cur";
        cur.textContent = "current";
        li.append(cur);
      }
      return li;
    });
    this.#list.replaceChildren(...items);
  }
}
