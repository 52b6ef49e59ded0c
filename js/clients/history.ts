// History panel: revisions newest first with message, time and rows changed; undo/redo
// live in the toolbar, here each older revision has a "revert" button. Runs (metrics,
// label issues) sit beside the revision they were computed at: just above its line, with
// their kind and headline aggregates (issue 12 point 4).
import { formatCount, formatNumber, formatShare, formatTime } from "../format";
import type { HistoryRow, RunHeadline, RunInfo } from "../types";

const KIND_TEXT: Record<string, string> = { metrics: "metrics", label_issues: "label issues" };

/** A headline aggregate as text: "accuracy 88.6%", "flagged 229", "loss 0.4612". */
export function formatHeadline(h: RunHeadline): string {
  if (h.value === null) return `${h.name} –`;
  if (h.unit === "share") return `${h.name} ${formatShare(h.value)}`;
  if (h.unit === "count") return `${h.name} ${formatCount(h.value)}`;
  return `${h.name} ${formatNumber(h.value)}`;
}

export interface HistoryOptions {
  onRevert: (revision: number) => void;
}

export class History {
  #opts: HistoryOptions;
  #root: HTMLDivElement;
  #list: HTMLOListElement;
  #rows: HistoryRow[] = [];
  #runs: RunInfo[] = [];
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

  update(next: { history?: HistoryRow[]; revision?: number; runs?: RunInfo[] }): void {
    if (next.history !== undefined) this.#rows = next.history;
    if (next.runs !== undefined) this.#runs = next.runs;
    if (next.revision !== undefined && next.revision !== this.#current) {
      this.#current = next.revision;
      this.#list.scrollTop = 0; // the newest revision is on top: show it
    }
    // runs newest first, each placed just above the revision it was computed at (older
    // than every listed revision: at the end)
    const runs = [...this.#runs].reverse();
    const oldest = this.#rows.length ? this.#rows[0]!.revision : Number.POSITIVE_INFINITY;
    const runsAt = (rev: number) => runs.filter((r) => r.revision === rev).map((r) => this.#run(r));
    const items = [...this.#rows].reverse().flatMap((h) => {
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
      return [...runsAt(h.revision), li];
    });
    items.push(...runs.filter((r) => r.revision < oldest).map((r) => this.#run(r)));
    this.#list.replaceChildren(...items);
  }

  #run(r: RunInfo): HTMLLIElement {
    const li = document.createElement("li");
    li.className = "ww-run";
    li.dataset.run = r.run;
    li.dataset.revision = String(r.revision);
    const tag = document.createElement("span");
    tag.className = "ww-run-tag";
    tag.textContent = "run";
    const name = document.createElement("span");
    name.className = "ww-run-name";
    const kind = KIND_TEXT[r.kind] ?? r.kind;
    name.textContent = `${r.run}${kind ? ` · ${kind}` : ""} · at r${r.revision}`;
    const meta = document.createElement("span");
    meta.className = "ww-run-meta";
    meta.textContent = r.headline.map(formatHeadline).join(" · ") || "no aggregates";
    const added = r.committed === null ? "" : `, columns added in r${r.committed}`;
    li.title =
      `run ${r.run} (${kind || "run"}) computed at revision r${r.revision}${added}\n` +
      `${formatTime(r.created)} · ${r.columns.join(", ")}`;
    li.append(tag, name, meta);
    return li;
  }
}
