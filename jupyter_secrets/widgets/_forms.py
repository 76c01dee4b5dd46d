"""The panel's forms: Add, Replace value, Edit metadata and the Delete confirmation.

Each is a ``Form``: a title, some inputs, an inline error line and Save / Cancel. The panel
wires the buttons; forms only hold widgets, so they stay easy to read and to test.
"""

from __future__ import annotations

import html
import re
from typing import Any

from ipywidgets import HTML, Button, HBox, Layout, Text, VBox, Widget

from ._value_field import ValueField

Record = dict[str, Any]
WIDE = Layout(width="420px")
HOSTS_HINT = "api.openai.com, *.example.com"


def parse_hosts(text: str) -> list[str]:
    """Comma- or space-separated host patterns, empty items dropped."""
    return [host for host in re.split(r"[,\s]+", text) if host]


def _labelled(label: str, widget: Widget) -> HBox:
    return HBox([HTML(f"<span>{html.escape(label)}</span>", layout=Layout(width="120px")),
                 widget])


class Form(VBox):
    def __init__(self, kind: str, title: str, inputs: dict[str, Widget],
                 *, save: str = "Save", danger: bool = False, intro: str = "") -> None:
        self.kind = kind
        self.inputs = inputs
        self.error = HTML("")
        self.save = Button(description=save, button_style="danger" if danger else "primary")
        self.cancel = Button(description="Cancel")
        rows: list[Widget] = [HTML(f"<b>{html.escape(title)}</b>")]
        if intro:
            rows.append(HTML(intro))
        rows.extend(_labelled(label, widget) for label, widget in inputs.items())
        rows += [self.error, HBox([self.save, self.cancel])]
        super().__init__(rows, layout=Layout(
            border="1px solid var(--jp-border-color1, #ccc)", padding="8px", margin="4px 0",
            grid_gap="4px"))
        self.add_class("jp-secrets-form")

    def show_error(self, message: str) -> None:
        self.error.value = (f'<span style="color: var(--jp-error-color1, #d32f2f)">'
                            f"{html.escape(message)}</span>" if message else "")

    def text(self, label: str) -> str:
        return str(self.inputs[label].value)


def add_form(value: ValueField) -> Form:
    return Form("add", "Add a secret", {
        "Name": Text(placeholder="OPENAI_API_KEY", layout=WIDE),
        "Description": Text(placeholder="What it is for", layout=WIDE),
        "Allowed hosts": Text(placeholder=HOSTS_HINT, layout=WIDE),
        "Value": value,
    })


def replace_form(record: Record, value: ValueField) -> Form:
    return Form("replace", f"Replace the value of {record['name']}", {"New value": value},
                intro=f"<small>Now at version {int(record.get('version', 0))}; the new value "
                "becomes the next version.</small>")


def edit_form(record: Record) -> Form:
    return Form("edit", f"Edit {record['name']}", {
        "Description": Text(record.get("description") or "", layout=WIDE),
        "Allowed hosts": Text(", ".join(record.get("allowed_hosts") or ()),
                              placeholder=HOSTS_HINT, layout=WIDE),
    })


def delete_form(record: Record) -> Form:
    users = list(record.get("used_by") or ())
    consequence = (
        f"It is used by {', '.join(html.escape(u) for u in users)}: "
        f"{'they' if len(users) > 1 else 'it'} will stop working."
        if users else "Nothing uses it."
    )
    return Form("delete", f"Delete {record['name']}?", {}, save="Delete", danger=True,
                intro=f"<span>{consequence} This cannot be undone.</span>")
