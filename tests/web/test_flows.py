"""The IVR flow page reads the flow the engine runs; the checker is the engine's validator."""

from __future__ import annotations

import io
import json
from typing import Any

from web.flows import DEFAULT_FLOW


def _check(client: Any, token: str, data: bytes) -> Any:
    return client.post("/flows/check", data={"csrf_token": token,
                                             "file": (io.BytesIO(data), "flow.json")},
                       content_type="multipart/form-data")


def test_the_flow_is_shown_node_by_node_in_the_chosen_language(as_role: Any) -> None:
    client, _ = as_role("agent")
    html = client.get("/flows/").get_data(as_text=True)
    doc = json.loads(DEFAULT_FLOW.read_text("utf-8"))
    # Every node, the start first, each with where its keys lead.
    assert html.count('<tr id="node-') == len(doc["nodes"])
    assert html.index('id="node-language"') < html.index('id="node-main"')
    assert "您好，欢迎致电保险服务热线。" in html
    assert '按 1 → <a href="#node-pol_number">pol_number</a>' in html
    english = client.get("/flows/?lang=en").get_data(as_text=True)
    assert "您好" not in english.split("<tbody>")[1]


def test_a_flow_document_is_checked_by_the_engine_validator(as_role: Any) -> None:
    client, token = as_role("supervisor")
    good = DEFAULT_FLOW.read_bytes()
    res = _check(client, token, good)
    assert res.status_code == 200 and "校验通过" in res.get_data(as_text=True)
    doc = json.loads(good)
    doc["nodes"]["main"]["options"]["7"] = "nowhere"
    doc["nodes"]["pol_number"]["prompt"] = ["no_such_prompt"]
    res = _check(client, token, json.dumps(doc).encode())
    html = res.get_data(as_text=True)
    # One wrong key target, and the missing prompt in each of the flow's three languages.
    assert res.status_code == 400 and "有 4 处问题" in html
    assert "<td>main</td>" in html and "nowhere" in html
    assert "<td>pol_number</td>" in html and "no_such_prompt" in html
    for junk in (b"", b"\xff\xfe not json", b"[1, 2]"):
        res = _check(client, token, junk)
        assert res.status_code == 400
