"""The value index: updated one secret at a time, fresh for the proxy, never blocking readers.

A real SQLite store and real encryption; a second ``SecretsService`` on the same file stands
for another process (the CLI): its writes reach the index only through the change feed.
"""

from __future__ import annotations

import json
import logging
import pickle
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from jupyter_secrets import crypto
from jupyter_secrets.crypto import Keyring, Plaintext
from jupyter_secrets.egress import redaction
from jupyter_secrets.egress.redaction import Redaction, ScrubbingFilter, ValueIndex
from jupyter_secrets.errors import SecretNotFound
from jupyter_secrets.keys import generate_key_text
from jupyter_secrets.services.secrets import PutValue, SecretsService
from jupyter_secrets.store.records import Changes
from jupyter_secrets.store.sqlite import SQLiteStore

from .helpers import assert_no_canary


@pytest.fixture
def key_text() -> str:
    return generate_key_text()


@pytest.fixture
def service(tmp_path: Path, key_text: str) -> Iterator[SecretsService]:
    svc = SecretsService(SQLiteStore(tmp_path / "s.db"), Keyring.from_text(key_text))
    yield svc
    svc.store.close()


@pytest.fixture
def other(tmp_path: Path, key_text: str) -> Iterator[SecretsService]:
    """Another writer on the same file whose changes the index hears of only via the feed."""
    svc = SecretsService(SQLiteStore(tmp_path / "s.db"), Keyring.from_text(key_text))
    yield svc
    svc.store.close()


class Opens:
    """Counts the values the index opens (decrypts) through ``SecretsService.open``."""

    def __init__(self, service: SecretsService) -> None:
        self.names: list[str] = []
        original = service.open

        def counting(names: Any) -> Any:
            names = list(names)
            self.names.extend(names)
            return original(names)

        service.open = counting  # type: ignore[method-assign]


def legacy(service: SecretsService, name: str, raw: str) -> None:
    """A value stored before today's input rules (whitespace-only values were accepted)."""
    def seal(identity: Any) -> Any:
        return crypto.seal(service.keyring, identity, Plaintext(raw))

    service.apply([PutValue(name, seal, "admin", "upsert")])


def value(name: str, version: int = 1) -> str:
    return f"value-of-{name.lower()}-v{version}-0123456789"


def loaded(service: SecretsService, **kwargs: Any) -> ValueIndex:
    index = ValueIndex(service, **kwargs)
    index.scrub_text("load")  # the first redaction loads every value
    assert index.wait_idle(30)
    return index


def test_a_write_opens_only_what_it_changed_and_rebuilds_no_segment(service):
    for i in range(10):
        service.create("admin", f"S{i}", value(f"S{i}"))
    index = loaded(service, segment_names=4, compact_delay_s=60)
    layers = index.layers
    assert len(layers.segments) == 3 and layers.delta is None
    opens = Opens(service)

    service.replace("admin", "S5", value("S5", 2))
    assert opens.names == ["S5"], "one write decrypts one value, not the store"
    after = index.layers
    assert after.segments == layers.segments, "no base automaton rebuilt on the write path"
    assert after.delta_names == {"S5"}
    assert index.scrub_text(value("S5", 2)) == "[REDACTED:S5]"
    assert index.scrub_text(value("S5")) == value("S5"), "the old value is not stored any more"
    assert index.scrub_text(value("S4")) == "[REDACTED:S4]"


def test_compaction_folds_the_delta_into_the_one_segment_concerned(service):
    for i in range(10):
        service.create("admin", f"S{i}", value(f"S{i}"))
    index = loaded(service, segment_names=4, compact_delay_s=0)
    before = index.layers.segments
    service.replace("admin", "S5", value("S5", 2))
    assert index.wait_idle(30)
    after = index.layers
    assert after.delta is None and not any(after.stale)
    changed = [i for i, (a, b) in enumerate(zip(before, after.segments, strict=True)) if a is not b]
    assert len(changed) == 1, "only the segment that held S5 is rebuilt"
    assert index.scrub_text(f"{value('S5', 2)} {value('S9')}") == "[REDACTED:S5] [REDACTED:S9]"


def test_deletes_and_batches_apply_at_once(service):
    service.create("admin", "KEEP", value("KEEP"))
    service.create("admin", "GONE", value("GONE"))
    index = loaded(service)
    service.batch("admin", [{"key": "GONE", "value": None},
                            *({"key": f"B{i}", "value": value(f"B{i}")} for i in range(99))])
    text = " ".join([value("KEEP"), value("GONE"), value("B0"), value("B98")])
    assert index.scrub_text(text) == (
        f"[REDACTED:KEEP] {value('GONE')} [REDACTED:B0] [REDACTED:B98]")


def test_the_proxy_gets_a_replaced_value_on_the_very_next_lookup(service):
    service.create("admin", "TOKEN", value("TOKEN"), allowed_hosts=["a.example"])
    index = ValueIndex(service)
    opened = index.lookup({"TOKEN"})
    assert opened["TOKEN"][1] == value("TOKEN")
    first = index.scrubber(opened)
    assert index.scrubber(index.lookup({"TOKEN"})) is first, "one scrubber per set of versions"
    opens = Opens(service)
    assert index.lookup_cached({"TOKEN"}) is not None, "no I/O while fresh"
    assert opens.names == []

    service.replace("admin", "TOKEN", value("TOKEN", 2))
    record, plain = index.lookup_cached({"TOKEN"})["TOKEN"]
    assert (record.version, plain) == (2, value("TOKEN", 2))
    assert index.scrubber(index.lookup({"TOKEN"})) is not first

    service.update_metadata("admin", "TOKEN", {"allowed_hosts": ["b.example"]})
    assert index.lookup_cached({"TOKEN"})["TOKEN"][0].allowed_hosts == ("b.example",)
    assert opens.names == ["TOKEN"], "metadata changes decrypt nothing"


def test_missing_names_raise_and_leave_nothing_behind(service):
    index = ValueIndex(service)
    with pytest.raises(SecretNotFound) as raised:
        index.lookup({"NOPE"})
    assert raised.value.name == "NOPE"
    assert index.lookup_cached({"NOPE"}) is None


def test_another_processes_writes_arrive_within_the_recheck_interval(service, other):
    service.create("admin", "SHARED", value("SHARED"))
    index = loaded(service)
    assert index.lookup({"SHARED"})["SHARED"][1] == value("SHARED")

    other.replace("admin", "SHARED", value("SHARED", 2))
    other.create("admin", "NEW", value("NEW"))
    time.sleep(index.recheck_s)  # the feed is read at most this long after the last check
    assert index.recheck_s <= 1.0
    assert index.lookup_cached({"SHARED"}) is None, "due for a check: the proxy takes the slow path"
    assert index.lookup({"SHARED"})["SHARED"][1] == value("SHARED", 2)
    assert index.scrub_text(value("NEW")) == "[REDACTED:NEW]"

    other.delete("SHARED")
    time.sleep(index.recheck_s)
    with pytest.raises(SecretNotFound):
        index.lookup({"SHARED"})
    assert index.scrub_text(value("SHARED", 2)) == value("SHARED", 2)


def test_a_feed_that_lost_track_reloads_everything_in_the_background(service, other,
                                                                     monkeypatch):
    service.create("admin", "A", value("A"))
    index = loaded(service)
    other.replace("admin", "A", value("A", 2))
    real = service.store.changes_since
    monkeypatch.setattr(service.store, "changes_since",
                        lambda marker: Changes(real(None).marker, None) if marker else real(marker))
    time.sleep(index.recheck_s)
    index.scrub_text("poll")
    assert index.wait_idle(30)
    monkeypatch.setattr(service.store, "changes_since", real)
    assert index.scrub_text(value("A", 2)) == "[REDACTED:A]"
    assert index.lookup({"A"})["A"][1] == value("A", 2)


def test_readers_never_wait_for_a_segment_build(service, monkeypatch):
    for i in range(6):
        service.create("admin", f"S{i}", value(f"S{i}"))
    index = loaded(service, segment_names=4, compact_delay_s=0)
    building = threading.Event()
    release = threading.Event()
    real_build: Callable[..., Any] = redaction.build_detector

    def slow_build(values: Any) -> Any:
        if len(values) > 1:  # a segment, not the delta
            building.set()
            release.wait(30)
        return real_build(values)

    monkeypatch.setattr(redaction, "build_detector", slow_build)
    service.replace("admin", "S1", value("S1", 2))
    assert building.wait(30), "the compaction started"
    try:
        # While the segment build is stuck, readers answer from the last layers + delta.
        assert index.scrub_text(f"{value('S1', 2)} {value('S1')}") == f"[REDACTED:S1] {value('S1')}"
        assert index.scrub_log(value("S3")) == "[REDACTED:S3]"
        assert index.lookup({"S1"})["S1"][1] == value("S1", 2)
        assert not release.is_set(), "answered while the build was still blocked"
    finally:
        release.set()
    assert index.wait_idle(30)
    assert index.layers.delta is None


def test_log_lines_saves_and_scans_skip_short_and_blank_values(service, tmp_path):
    legacy(service, "ONE", "x")
    legacy(service, "SPACES", "        ")
    legacy(service, "TABS", "\t\t\t\t\t\t\t\t")
    legacy(service, "SEVEN", "abcdefg")
    service.create("admin", "LONG", "long-enough")
    index = loaded(service)
    text = "def very():\n        return 'abcdefg' + 'long-enough'\n"
    assert index.scrub_text(text) == (
        "def very():\n        return 'abcdefg' + '[REDACTED:LONG]'\n")
    # ...but the proxy scrubs every value it injected, however short.
    opened = index.lookup({"ONE", "SEVEN"})
    assert index.scrubber(opened).scrub_text("box abcdefg") == "bo[REDACTED:ONE] [REDACTED:SEVEN]"
    strict = loaded(service, min_length=4)
    assert strict.scrub_text("abcdefg") == "[REDACTED:SEVEN]"


@pytest.mark.parametrize("secret", ["value-of-key-v1-0123456789", "clé-secrète-ünï-😀-42"])
def test_notebooks_are_redacted_in_every_string_and_counted(service, secret):
    service.create("admin", "KEY", secret)
    index = loaded(service)
    model = {"type": "notebook", "content": {
        "cells": [{"source": ["→ é ü\n", f"a = '{secret}'\n", "b = 1\n"],
                   "outputs": [{"text": secret}, {"text": "plain"}]}],
        "metadata": {secret: {"nested": [secret, 1, None, True, f"x{secret}{secret}"]}},
    }}
    found = index.scrub_model(model)
    assert found.found == {"KEY": 6}
    assert model["content"] == {
        "cells": [{"source": ["→ é ü\n", "a = '[REDACTED:KEY]'\n", "b = 1\n"],
                   "outputs": [{"text": "[REDACTED:KEY]"}, {"text": "plain"}]}],
        "metadata": {"[REDACTED:KEY]": {"nested": [
            "[REDACTED:KEY]", 1, None, True, "x[REDACTED:KEY][REDACTED:KEY]"]}},
    }
    assert_no_canary(secret, json.dumps(model, ensure_ascii=False))
    clean = {"type": "notebook", "content": {"cells": [{"source": "print(1)"}]}}
    before = json.dumps(clean)
    assert index.scrub_model(clean).found == {} and json.dumps(clean) == before


def test_scans_read_files_once_and_rewrite_only_what_holds_values(service, tmp_path):
    service.create("admin", "KEY", 'quoted "value" é/1')
    index = loaded(service)
    nb = tmp_path / "n.ipynb"
    nb.write_text(json.dumps({"cells": [{"source": 'k = quoted "value" é/1'}]},
                             ensure_ascii=True).replace("q", "\\u0071"))  # odd escapes
    plain = tmp_path / "p.txt"
    plain.write_bytes(b"\xff binary prefix quoted \"value\" \xc3\xa9/1\n")
    clean = tmp_path / "c.py"
    clean.write_text("print('hi')\n")
    report = dict(index.scan_tree(tmp_path, redact=True))
    assert {p.name: r.found for p, r in report.items()} == {"n.ipynb": {"KEY": 1},
                                                           "p.txt": {"KEY": 1}}
    assert json.loads(nb.read_text())["cells"][0]["source"] == "k = [REDACTED:KEY]"
    assert plain.read_bytes() == b"\xff binary prefix [REDACTED:KEY]\n"
    assert clean.read_text() == "print('hi')\n"


def test_the_log_filter_scrubs_messages_and_tracebacks(service):
    service.create("admin", "KEY", value("KEY"))
    index = ValueIndex(service)
    logger = logging.getLogger("test.value_index")
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    handler = Keep()
    handler.addFilter(ScrubbingFilter(index))
    logger.addHandler(handler)
    try:
        logger.warning("got %s", value("KEY"))
        try:
            raise ValueError(value("KEY"))
        except ValueError:
            logger.exception("failed")
    finally:
        logger.removeHandler(handler)
    assert records[0].getMessage() == "got [REDACTED:KEY]"
    assert "[REDACTED:KEY]" in (records[1].exc_text or "")
    assert_no_canary(value("KEY"), *(r.getMessage() + (r.exc_text or "") for r in records))


def test_the_logger_filter_scrubs_every_record_a_handler_will_write(service):
    """On a logger the filter runs before handler levels are known; it skips only records
    no handler up the chain takes (Jupyter passes every DEBUG access line to INFO handlers,
    and scrubbing each cost more than the rest of the request's logging)."""
    service.create("admin", "KEY", value("KEY"))
    index = ValueIndex(service)
    parent = logging.getLogger("test.scrub_levels")
    child = logging.getLogger("test.scrub_levels.child")
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    handler = Keep(level=logging.INFO)
    parent.addHandler(handler)  # on the parent: the child's records reach it by propagation
    child.setLevel(logging.DEBUG)
    log_filter = ScrubbingFilter(index)
    child.addFilter(log_filter)
    try:
        child.debug("debug %s", value("KEY"))  # no handler takes it
        child.info("info %s", value("KEY"))
        handler.setLevel(logging.DEBUG)
        child.debug("now kept %s", value("KEY"))
    finally:
        parent.removeHandler(handler)
        child.removeFilter(log_filter)
    assert [r.getMessage() for r in records] == ["info [REDACTED:KEY]",
                                                 "now kept [REDACTED:KEY]"]
    assert_no_canary(value("KEY"), *(r.getMessage() for r in records))


def test_nothing_shows_or_pickles_a_value(service):
    service.create("admin", "KEY", value("KEY"))
    index = loaded(service)
    index.lookup({"KEY"})
    shown = [repr(index), repr(index.layers), *map(repr, index.layers.segments),
             repr(index.scrubber(index.lookup({"KEY"}))), repr(Redaction())]
    assert_no_canary(value("KEY"), *shown)
    for thing in (index.layers.segments[0].detector, index.scrubber(index.lookup({"KEY"}))):
        with pytest.raises(TypeError):
            pickle.dumps(thing)
