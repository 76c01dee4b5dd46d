"""The secrets table: one row of plain-text cells per secret, plus per-row action buttons.

Cells are ``Label`` widgets (text, never HTML) because descriptions and names come from other
users; the header is the only HTML and it is constant.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

from ipywidgets import HTML, Button, GridBox, HBox, Label, Layout, Widget

Record = dict[str, Any]
Action = Callable[[Record], object]

COLUMNS = ("Name", "Kind", "Description", "Owner", "Updated", "Version", "Used by", "Last used")
WIDTHS = ("minmax(110px, 1.2fr)", "40px", "minmax(80px, 2fr)", "minmax(50px, 0.7fr)", "120px",
          "52px", "minmax(60px, 1fr)", "minmax(80px, 1fr)")
# Icon buttons keep the table inside a notebook's width; the tooltip names action and secret.
ACTIONS = (("Replace", "key", "Replace the value of"), ("Edit", "pencil", "Edit the metadata of"),
           ("Delete", "trash", "Delete"))


def when(stamp: str | None) -> str:
    """``2025-01-31 14:05`` in the kernel's local time from an ISO timestamp, else as given."""
    if not stamp:
        return ""
    try:
        moment = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    except ValueError:
        return stamp
    return (moment.astimezone() if moment.tzinfo else moment).strftime("%Y-%m-%d %H:%M")


def sort_records(records: Sequence[Record], key: str) -> list[Record]:
    """By name, or most recently updated first."""
    if key == "updated":
        return sorted(records, key=lambda r: (r.get("updated_at") or "", r["name"]),
                      reverse=True)
    return sorted(records, key=lambda r: r["name"])


def cells(record: Record) -> list[tuple[str, str]]:
    """``(text, tooltip)`` of each column for one secret; tooltips carry what does not fit."""
    used = ", ".join(record.get("used_by") or ()) or "-"
    updated = when(record.get("updated_at"))
    last = when(record.get("last_used_at"))
    count = record.get("use_count") or 0
    uses = f"{last}, {count} use{'s' * (count != 1)} in all" if last else "never used"
    description = record.get("description") or ""
    return [
        (record["name"], record["name"]), (record.get("kind", ""), ""),
        (description, description), (record.get("owner", ""), record.get("owner", "")),
        (updated, f"{updated} by {record.get('updated_by', '')}"),
        (str(record.get("version", "")), ""), (used, used), (last or "never", uses),
    ]


def _cell(text: str, tip: str) -> Label:
    return Label(text, tooltip=tip or None, layout=Layout(min_width="0"))


def build_table(records: Sequence[Record], *, actions: Mapping[str, Action] | None) -> GridBox:
    """A grid of the given records; ``actions`` None means read-only (no buttons)."""
    widths = list(WIDTHS) + (["max-content"] if actions else [])
    header: list[Widget] = [HTML(f"<b>{title}</b>") for title in COLUMNS]
    if actions:
        header.append(HTML(""))
    children = header
    for record in records:
        children.extend(_cell(text, tip) for text, tip in cells(record))
        if actions:
            children.append(HBox([_button(record, label, icon, tip, actions[label])
                                  for label, icon, tip in ACTIONS]))
    return GridBox(children, layout=Layout(
        grid_template_columns=" ".join(widths), grid_gap="2px 10px", align_items="center",
        width="100%", overflow="auto"))


def _button(record: Record, label: str, icon: str, tip: str, action: Action) -> Button:
    button = Button(icon=icon, tooltip=f"{tip} {record['name']}",
                    button_style="danger" if label == "Delete" else "",
                    layout=Layout(width="32px", padding="0"))
    button.on_click(lambda _b: action(record))
    return button
