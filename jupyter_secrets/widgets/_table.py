"""The read-only table the panel shows when the browser cannot draw the real panel.

One page of secrets as escaped HTML (names and descriptions come from other people: text,
never markup), with search and paging done in the kernel. It is a fixed set of widgets whose
values change, so refreshing or paging creates no widget.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from ipywidgets import HTML, Button, HBox, Layout, Text, VBox

Record = dict[str, Any]
PAGE_SIZE = 50
COLUMNS = ("Name", "Kind", "Allowed hosts", "Placements", "Used by", "Last used")
NO_EXTENSION = (
    "<b>Read-only view.</b> This browser lacks the jupyter-secrets front-end, so the panel "
    "cannot take values here. Install it where JupyterLab or Notebook 7 runs "
    "(<code>pip install jupyter-secrets</code>, then reload the page; "
    "<code>jupyter labextension list</code> should show <code>jupyter-secrets</code>), "
    "or use the <b>Secrets</b> sidebar (key icon) of a front-end that has it."
)


def when(stamp: str | None) -> str:
    """``2025-01-31 14:05`` in the kernel's local time from an ISO timestamp, else as given."""
    if not stamp:
        return ""
    try:
        moment = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    except ValueError:
        return stamp
    return (moment.astimezone() if moment.tzinfo else moment).strftime("%Y-%m-%d %H:%M")


def matches(record: Record, query: str) -> bool:
    """Every word of ``query`` appears in the name, description, owner, hosts or users."""
    haystack = " ".join([
        record.get("name", ""), record.get("description") or "", record.get("owner") or "",
        *(record.get("allowed_hosts") or ()), *(record.get("used_by") or ()),
    ]).lower()
    return all(word in haystack for word in query.lower().split())


def cells(record: Record) -> list[str]:
    last = when(record.get("last_used_at"))
    count = int(record.get("use_count") or 0)
    return [
        record["name"], record.get("kind", ""),
        ", ".join(record.get("allowed_hosts") or ()) or "connections only",
        ", ".join(record.get("placements") or ("header",)),
        ", ".join(record.get("used_by") or ()) or "-",
        f"{last} ({count} use{'s' * (count != 1)})" if last else "never",
    ]


def table_html(records: Sequence[Record]) -> str:
    """An HTML table of ``records``; long cells are ellipsized, whole in the tooltip."""
    head = "".join(f"<th>{title}</th>" for title in COLUMNS)
    rows = []
    for record in records:
        tds = "".join(
            f'<td title="{html.escape(text)}">{html.escape(text)}</td>' for text in cells(record)
        )
        rows.append(f"<tr>{tds}</tr>")
    return (
        '<table class="jp-secrets-fallback-table" style="table-layout: fixed; width: 100%; '
        'border-collapse: collapse"><colgroup><col style="width: 24%"><col style="width: 8%">'
        '<col style="width: 22%"><col style="width: 12%"><col style="width: 16%">'
        f'<col style="width: 18%"></colgroup><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table>"
        "<style>.jp-secrets-fallback-table td, .jp-secrets-fallback-table th {overflow: hidden;"
        " text-overflow: ellipsis; white-space: nowrap; text-align: left; padding: 1px 6px;"
        " border-bottom: 1px solid var(--jp-border-color2, #ddd)}</style>"
    )


class ReadOnlyTable(VBox):
    """Search, one page of secrets, Previous / Next: always the same seven widgets."""

    def __init__(self, page_size: int = PAGE_SIZE, **kwargs: Any) -> None:
        self.page_size = page_size
        self.page = 0
        self.records: list[Record] = []
        self.note = HTML(NO_EXTENSION)
        self.status = HTML("")
        self.search = Text(placeholder="Search names, hosts, connections",
                           description="Search", layout=Layout(width="360px"))
        self.table = HTML("")
        self.previous = Button(description="Previous", icon="chevron-left")
        self.next = Button(description="Next", icon="chevron-right")
        self.position = HTML("")
        super().__init__([self.note, self.search, self.status, self.table,
                          HBox([self.previous, self.position, self.next],
                               layout=Layout(align_items="center", grid_gap="8px"))], **kwargs)
        self.add_class("jp-secrets-fallback")
        self.search.observe(lambda _c: self.go(0), names="value")
        self.previous.on_click(lambda _b: self.go(self.page - 1))
        self.next.on_click(lambda _b: self.go(self.page + 1))

    def show(self, records: Sequence[Record]) -> None:
        self.records = sorted(records, key=lambda r: r["name"])
        self.go(self.page)

    def visible(self) -> list[Record]:
        query = self.search.value.strip()
        return [r for r in self.records if matches(r, query)] if query else self.records

    def go(self, page: int) -> None:
        visible = self.visible()
        pages = max(1, -(-len(visible) // self.page_size))
        self.page = min(max(page, 0), pages - 1)
        start = self.page * self.page_size
        shown = visible[start:start + self.page_size]
        if shown:
            self.table.value = table_html(shown)
        else:
            self.table.value = ("<i>No secret matches the search.</i>" if self.records
                                else "<i>No secrets yet.</i>")
        self.position.value = (f"{start + 1}-{start + len(shown)} of {len(visible)}"
                               if shown else "")
        self.previous.disabled = self.page == 0
        self.next.disabled = self.page >= pages - 1
