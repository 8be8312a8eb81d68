"""The flow validator: the demo flow passes, and each kind of broken document is refused
with an error that names the node at fault and what was expected."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from appliance.ivr.flow import FLOW, Flow, FlowError, FlowInvalid, load_flow, validate

DEMO = Path(__file__).parent / "flows" / "demo.json"


def base() -> dict[str, Any]:
    return {
        "name": "t", "version": 1, "languages": ["zh", "en"], "start": "main",
        "nodes": {
            "main": {"type": "menu", "prompt": ["welcome"], "options": {"1": "bye"},
                     "on_invalid": "bye", "on_timeout": "bye"},
            "bye": {"type": "hangup", "prompt": ["goodbye"]},
        },
    }


def errors_for(doc: dict[str, Any]) -> list[FlowError]:
    return validate(doc)


def only(errors: list[FlowError], node: str, *words: str) -> None:
    """Exactly one error, on ``node``, whose message holds every word."""
    assert len(errors) == 1, errors
    assert errors[0].node == node, errors
    for word in words:
        assert word in errors[0].message, errors


def test_demo_flow_is_valid_and_loads() -> None:
    assert validate(json.loads(DEMO.read_text())) == []
    flow = load_flow(DEMO)
    assert isinstance(flow, Flow)
    assert (flow.name, flow.version, flow.languages) == ("demo", 1, ("zh", "en"))
    assert flow.operator == "operator" and flow.functions() == {"policy_premium"}


def test_base_document_is_valid() -> None:
    assert errors_for(base()) == []


def test_unknown_node_type_is_named() -> None:
    doc = base()
    doc["nodes"]["bye"]["type"] = "dance"
    only(errors_for(doc), "bye", "unknown node type 'dance'", "hangup")


def test_missing_next_is_a_dead_end() -> None:
    doc = base()
    doc["nodes"]["main"]["options"]["2"] = "say"
    doc["nodes"]["say"] = {"type": "play", "prompts": ["welcome"]}
    only(errors_for(doc), "say", "missing 'next'", "dead end")


def test_unknown_target_and_option_target_are_named() -> None:
    doc = base()
    doc["nodes"]["main"]["on_timeout"] = "nowhere"
    only(errors_for(doc), "main", "on_timeout 'nowhere' is not a node id")
    doc = base()
    doc["nodes"]["main"]["options"]["5"] = "nowhere"
    only(errors_for(doc), "main", "options[5] 'nowhere'")


def test_option_key_must_be_a_phone_key() -> None:
    doc = base()
    doc["nodes"]["main"]["options"]["x"] = "bye"
    only(errors_for(doc), "main", "'x' is not a phone key")


def test_unreachable_node_is_named() -> None:
    doc = base()
    doc["nodes"]["orphan"] = {"type": "play", "prompts": ["welcome"], "next": "bye"}
    only(errors_for(doc), "orphan", "unreachable")


def test_operator_node_counts_as_reachable_and_must_exist() -> None:
    doc = base()
    doc["nodes"]["op"] = {"type": "transfer", "queue": "agents", "prompt": ["welcome"],
                          "next": "bye"}
    doc["operator"] = "op"
    assert errors_for(doc) == []
    doc["operator"] = "nope"
    errors = errors_for(doc)
    assert FlowError(FLOW, "operator 'nope' is not a node id") in errors


def test_prompt_missing_in_an_enabled_language() -> None:
    doc = base()
    doc["languages"] = ["zh", "yue"]
    # Cantonese has the default flow's prompts but not the demo's enter_digits / you_entered.
    doc["nodes"]["main"]["prompt"] = ["enter_digits"]
    doc["nodes"]["bye"]["prompt"] = ["you_entered"]
    errors = errors_for(doc)
    assert {e.node for e in errors} == {"main", "bye"}
    assert any(e.node == "main" and "'enter_digits' is missing in language 'yue'" in e.message
               for e in errors)
    assert not any("'zh'" in e.message for e in errors)


def test_prompt_missing_in_a_custom_prompt_folder(tmp_path: Path) -> None:
    for lang, names in (("zh", ["welcome", "goodbye"]), ("en", ["welcome"])):
        (tmp_path / lang).mkdir()
        for name in names:
            (tmp_path / lang / f"{name}.wav").write_bytes(b"")
    only(validate(base(), tmp_path), "bye", "'goodbye' is missing in language 'en'")


def test_bad_field_types_name_node_and_field() -> None:
    doc = base()
    doc["nodes"]["main"]["retries"] = "two"
    only(errors_for(doc), "main", "retries must be an integer", "'two'")
    doc = base()
    doc["nodes"]["main"]["prompt"] = "welcome"
    only(errors_for(doc), "main", "prompt must be a list of prompt names")
    doc = base()
    doc["nodes"]["main"]["timeout"] = True
    only(errors_for(doc), "main", "timeout must be a number")


def test_unknown_field_is_refused() -> None:
    doc = base()
    doc["nodes"]["bye"]["nxt"] = "main"
    only(errors_for(doc), "bye", "unknown fields nxt")


def test_language_option_must_be_an_enabled_language() -> None:
    doc = base()
    doc["start"] = "lang"
    doc["nodes"]["lang"] = {"type": "language", "prompt": ["welcome"],
                            "options": {"1": "zh", "2": "yue"}, "next": "main"}
    only(errors_for(doc), "lang", "options[2] 'yue'", "flow's languages")


def test_variable_read_but_never_set() -> None:
    doc = base()
    doc["nodes"]["main"]["options"]["2"] = "say"
    doc["nodes"]["say"] = {"type": "speak", "kind": "money", "variable": "premium",
                           "next": "bye"}
    only(errors_for(doc), "say", "reads variable 'premium'")


def test_speak_literal_that_cannot_be_spoken() -> None:
    doc = base()
    doc["nodes"]["main"]["options"]["2"] = "say"
    doc["nodes"]["say"] = {"type": "speak", "kind": "date", "value": "2026-02-30",
                           "next": "bye"}
    errors = errors_for(doc)
    assert errors and all(e.node == "say" and "does not exist" in e.message for e in errors)


def test_bad_schedule_and_goto_loop() -> None:
    doc = base()
    doc["start"] = "open"
    doc["nodes"]["open"] = {"type": "hours", "open": "main", "closed": "bye",
                            "schedule": [{"days": ["mon"], "from": "18:00", "to": "09:00"}]}
    only(errors_for(doc), "open", "from 18:00 is not before to 09:00")
    doc["nodes"]["open"]["schedule"][0]["from"] = "08:30"
    doc["nodes"]["open"]["holidays"] = ["2026-10-01"]
    assert errors_for(doc) == []
    for bad in (["20261001"], ["2026-02-30"], "2026-10-01", [20261001]):
        doc["nodes"]["open"]["holidays"] = bad
        only(errors_for(doc), "open", "a list of dates YYYY-MM-DD")
    doc = base()
    doc["nodes"]["main"]["options"]["2"] = "vm"
    doc["nodes"]["vm"] = {"type": "voicemail", "box": "queue:service", "next": "bye"}
    assert errors_for(doc) == []
    for bad in ("after-hours", "queue:", "salesperson:31 0", ""):
        doc["nodes"]["vm"]["box"] = bad
        only(errors_for(doc), "vm", "general, queue:<name> or salesperson:<code>")
    doc = base()
    doc["nodes"]["main"]["options"]["2"] = "a"
    doc["nodes"]["a"] = {"type": "goto", "target": "b"}
    doc["nodes"]["b"] = {"type": "goto", "target": "a"}
    errors = errors_for(doc)
    assert {e.node for e in errors} == {"a", "b"}
    assert all("goto loop" in e.message for e in errors)


def test_header_errors_are_reported_on_the_flow() -> None:
    doc = base()
    doc.update(version=0, languages=["zh", "fr"], start="missing")
    errors = errors_for(doc)
    assert all(e.node == FLOW for e in errors[:3]), errors
    text = " | ".join(map(str, errors))
    assert "version must be an integer" in text
    assert "language 'fr'" in text
    assert "start 'missing' is not a node id" in text


def test_load_flow_lists_every_error() -> None:
    doc = base()
    doc["nodes"]["bye"]["type"] = "dance"
    doc["nodes"]["orphan"] = {"type": "play", "prompts": ["nope"], "next": "bye"}
    with pytest.raises(FlowInvalid) as info:
        load_flow(copy.deepcopy(doc))
    nodes = [e.node for e in info.value.errors]
    assert nodes.count("orphan") == 3  # the prompt in zh, in en, unreachable
    assert "bye" in nodes
    assert "bye: unknown node type" in str(info.value)


def test_load_flow_refuses_a_file_that_is_not_json(tmp_path: Path) -> None:
    path = tmp_path / "broken.json"
    path.write_text("{", encoding="utf-8")
    with pytest.raises(FlowInvalid, match="not JSON"):
        load_flow(path)
