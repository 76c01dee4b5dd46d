"""``SecretsPanel``: the admins' notebook view of workspace secrets (names and metadata only).

Every server call goes through ``SecretsAPI``; every value goes through ``ValueField``,
which sends it from the browser when the labextension is there. Non-admins get the table
without write controls, because the server would refuse their writes anyway.
"""

from __future__ import annotations

import contextlib
import html
from collections.abc import Callable
from typing import Any

from ipywidgets import HTML, Button, Dropdown, HBox, Layout, ToggleButtons, VBox

from ._api import APIError, SecretsAPI
from ._forms import Form, add_form, delete_form, edit_form, parse_hosts, replace_form
from ._table import Record, build_table, sort_records
from ._value_field import Outcome, ValueField

TITLE = "<b style='font-size: var(--jp-content-font-size2, 1.2em)'>Workspace secrets</b>"


class SecretsPanel(VBox):
    """Table of secrets with filter, sort and refresh; Add / Replace / Edit / Delete for admins."""

    def __init__(self, api: SecretsAPI | None = None, *, fallback_after: float | None = 4.0,
                 **kwargs: Any) -> None:
        self.api = api if api is not None else SecretsAPI.from_env()
        self.value = ValueField(fallback_after=fallback_after)
        self.value.secure.on_enter(self._on_enter)
        self.who = HTML("")
        self.status = HTML("")
        self.owner = ToggleButtons(options=[("All", "all"), ("Mine", "me")], value="all",
                                   tooltips=["Every secret", "Secrets you own"],
                                   style={"button_width": "64px"})
        self.sort = Dropdown(options=[("Name", "name"), ("Last updated", "updated")],
                             value="name", description="Sort by", layout=Layout(width="210px"))
        self.refresh_button = Button(description="Refresh", icon="refresh")
        self.add_button = Button(description="Add secret", icon="plus", button_style="primary",
                                 layout=Layout(display="none"))  # until the server says admin
        self.form_area = VBox()
        self.table_area = VBox()
        self.records: list[Record] = []
        self.me: dict[str, Any] = {}
        self.form: Form | None = None
        header = HBox([HTML(TITLE), self.who], layout=Layout(align_items="baseline",
                                                             grid_gap="12px"))
        toolbar = HBox([self.owner, self.sort, self.refresh_button, self.add_button],
                       layout=Layout(align_items="center", grid_gap="8px", flex_flow="row wrap"))
        super().__init__([header, toolbar, self.status, self.form_area, self.table_area],
                         **kwargs)
        self.add_class("jp-secrets-panel")
        self.owner.observe(lambda _c: self.refresh(), names="value")
        self.sort.observe(lambda _c: self._render(), names="value")
        self.refresh_button.on_click(lambda _b: self._refresh_clicked())
        self.add_button.on_click(lambda _b: self.show_add())
        self.refresh()

    @property
    def can_write(self) -> bool:
        return bool(self.me.get("can_write"))

    def say(self, message: str, *, error: bool = False, warn: bool = False) -> None:
        color = ("var(--jp-error-color1, #d32f2f)" if error else
                 "var(--jp-warn-color1, #f57c00)" if warn else "var(--jp-success-color1, #388e3c)")
        self.status.value = (f'<span style="color: {color}">{html.escape(message)}</span>'
                             if message else "")

    def refresh(self) -> None:
        """Reload who we are and the list; errors go to the status line, the table stays."""
        try:
            self.me = self.api.me()
            self.records = self.api.list(owner=self.owner.value)
        except APIError as error:
            self.say(str(error), error=True)
            return
        role = "admin" if self.can_write else "read-only"
        self.who.value = html.escape(f"{self.me.get('name') or self.me.get('username')} · {role}")
        self.add_button.layout.display = None if self.can_write else "none"
        self._render()

    def _refresh_clicked(self) -> None:
        self.say("")  # an old "Added X" would read as news about the reloaded table
        self.refresh()

    def _render(self) -> None:
        records = sort_records(self.records, self.sort.value)
        if not records:
            empty = "You own no secrets." if self.owner.value == "me" else "No secrets yet."
            self.table_area.children = [HTML(f"<i>{empty}</i>")]
            return
        actions = ({"Replace": self.show_replace, "Edit": self.show_edit,
                    "Delete": self.show_delete} if self.can_write else None)
        self.table_area.children = [build_table(records, actions=actions)]

    # -- forms -----------------------------------------------------------------------------

    def _open(self, form: Form, on_save: Callable[[Form], None]) -> Form:
        self.value.clear()
        self.say("")
        form.save.on_click(lambda _b: on_save(form))
        form.cancel.on_click(lambda _b: self.close_form())
        self.form = form
        self.form_area.children = [form]
        return form

    def close_form(self) -> None:
        self.value.clear()
        self.form = None
        self.form_area.children = []

    def show_add(self) -> Form:
        return self._open(add_form(self.value), self._save_add)

    def show_replace(self, record: Record) -> Form:
        return self._open(replace_form(record, self.value),
                          lambda form: self._send_value(form, "PUT", record["name"], {}))

    def show_edit(self, record: Record) -> Form:
        return self._open(edit_form(record), lambda form: self._save_edit(form, record))

    def show_delete(self, record: Record) -> Form:
        with contextlib.suppress(APIError):  # what uses it may have changed since drawn
            record = self.api.get(record["name"])
        return self._open(delete_form(record), lambda form: self._delete(form, record))

    def _on_enter(self) -> None:
        if self.form is not None and self.form.kind in ("add", "replace"):
            self.form.save.click()

    def _save_add(self, form: Form) -> None:
        name = form.text("Name").strip()
        if not name:
            form.show_error("Give the secret a name, like OPENAI_API_KEY.")
            return
        fields: dict[str, Any] = {"description": form.text("Description").strip()}
        hosts = parse_hosts(form.text("Allowed hosts"))
        if hosts:
            fields["allowed_hosts"] = hosts
        self._send_value(form, "POST", name, fields)

    def _send_value(self, form: Form, method: str, name: str, fields: dict[str, Any]) -> None:
        form.show_error("")
        form.save.disabled = True
        verb = "Added" if method == "POST" else "Replaced the value of"

        def done(outcome: Outcome) -> None:
            form.save.disabled = False
            if not outcome.ok:
                form.show_error(outcome.message)
                return
            self.close_form()
            self.refresh()
            note = (" The value passed through the kernel (no jupyter-secrets extension in "
                    "this browser); it was cleared right after sending."
                    if self.value.via_kernel else "")
            self.say(f"{verb} {outcome.name} (version {outcome.version}).{note}", warn=bool(note))

        self.value.submit(self.api, "POST" if method == "POST" else "PUT", name, fields, done)

    def _save_edit(self, form: Form, record: Record) -> None:
        """Send only what changed: a kernel may edit a description, but where a value may
        go (allowed hosts) is changed from a person's session, and the server says so."""
        fields: dict[str, Any] = {"description": form.text("Description").strip()}
        hosts = parse_hosts(form.text("Allowed hosts"))
        if list(hosts) != list(record.get("allowed_hosts") or []):
            fields["allowed_hosts"] = hosts
        try:
            self.api.patch(record["name"], **fields)
        except APIError as error:
            form.show_error(str(error))
            return
        self.close_form()
        self.refresh()
        self.say(f"Updated {record['name']}.")

    def _delete(self, form: Form, record: Record) -> None:
        try:
            self.api.delete(record["name"], force=bool(record.get("used_by")))
        except APIError as error:
            form.show_error(str(error))
            return
        self.close_form()
        self.refresh()
        self.say(f"Deleted {record['name']}.")
