"""The secrets table: one row of plain-text cells per secret, plus per-row action buttons.

Cells are ``Label`` widgets (text, never HTML) because descriptions and names come from other
users; the header is the only HTML and it is constant.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from ipywidgets import HTML, Button, GridBox, HBox, Label, Layout, Widget

Record = dict[str, Any]
Action = Callable[[Record], None]

COLUMNS = ("Name", "Kind", "Description", "Owner", "Updated", "Version", "Used by", "Last used")
WIDTHS = ("minmax(150px, 1.3fr)", "56px", "minmax(140px, 2fr)", "90px", "minmax(150px, 1.2fr)",
          "56px", "minmax(90px, 1fr)", "minmax(110px, 1fr)")
ACTIONS = (("Replace", "key", "Replace value"), ("Edit", "pencil", "Edit description and hosts"),
           ("Delete", "trash", "Delete"))


def when(stamp: str | None) -> str:
    """``2025-01-31 14:05`` from an ISO timestamp; the raw text if it is not one."""
    if not stamp:
        return ""
    try:
        return datetime.fromisoformat(stamp.replace("Z", "+00:00")).strftime("%Y-%m-%d %H:%M")
    except ValueError:
        return stamp


def sort_records(records: Sequence[Record], key: str) -> list[Record]:
    """By name, or most recently updated first."""
    if key == "updated":
        return sorted(records, key=lambda r: (r.get("updated_at") or "", r["name"]),
                      reverse=True)
    return sorted(records, key=lambda r: r["name"])


def cells(record: Record) -> list[str]:
    """The text of each column for one secret."""
    used = ", ".join(record.get("used_by") or ()) or "-"
    last = when(record.get("last_used_at"))
    count = record.get("use_count") or 0
    return [
        record["name"], record.get("kind", ""), record.get("description") or "",
        record.get("owner", ""),
        f"{when(record.get('updated_at'))} by {record.get('updated_by', '')}".strip(),
        str(record.get("version", "")), used,
        f"{last} ({count} use{'s' * (count != 1)})" if last else "never",
    ]


def _cell(text: str) -> Label:
    return Label(text, tooltip=text or None, layout=Layout(min_width="0"))


def build_table(records: Sequence[Record], *, actions: dict[str, Action] | None) -> GridBox:
    """A grid of the given records; ``actions`` None means read-only (no buttons)."""
    widths = list(WIDTHS) + (["max-content"] if actions else [])
    header: list[Widget] = [HTML(f"<b>{title}</b>") for title in COLUMNS]
    if actions:
        header.append(HTML(""))
    children = header
    for record in records:
        children.extend(_cell(text) for text in cells(record))
        if actions:
            children.append(HBox([_button(record, label, icon, tip, actions[label])
                                  for label, icon, tip in ACTIONS]))
    return GridBox(children, layout=Layout(
        grid_template_columns=" ".join(widths), grid_gap="2px 12px", align_items="center",
        width="100%", overflow="auto"))


def _button(record: Record, label: str, icon: str, tip: str, action: Action) -> Button:
    button = Button(description=label, icon=icon, tooltip=f"{tip}: {record['name']}",
                    button_style="danger" if label == "Delete" else "",
                    layout=Layout(width="auto"))
    button.on_click(lambda _b: action(record))
    return button
