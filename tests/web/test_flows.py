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


def _upload(client: Any, token: str, doc: dict[str, Any]) -> Any:
    return client.post("/flows/draft", data={"csrf_token": token, "file": (
        io.BytesIO(json.dumps(doc, ensure_ascii=False).encode()), "flow.json")},
        content_type="multipart/form-data")


def test_drafts_are_published_after_the_validator_and_rolled_back(as_role: Any) -> None:
    client, token = as_role("supervisor")
    doc = json.loads(DEFAULT_FLOW.read_text("utf-8"))
    res = _upload(client, token, doc)
    assert res.status_code == 303 and res.headers["Location"].endswith("/flows/?version=1")
    page = client.get("/flows/?version=1").get_data(as_text=True)
    assert "草稿" in page  # a draft until published
    res = client.post("/flows/1/publish", data={"csrf_token": token})
    assert res.status_code == 303
    assert "已发布" in client.get("/flows/").get_data(as_text=True)
    # A broken draft is kept, but publishing it is refused with every problem by node.
    broken = json.loads(DEFAULT_FLOW.read_text("utf-8"))
    broken["nodes"]["main"]["options"]["7"] = "nowhere"
    assert _upload(client, token, broken).status_code == 303
    res = client.post("/flows/2/publish", data={"csrf_token": token})
    html = res.get_data(as_text=True)
    assert res.status_code == 400 and "<td>main</td>" in html and "nowhere" in html
    # A shorter greeting, published, then rolled back to version 1.
    shorter = json.loads(DEFAULT_FLOW.read_text("utf-8"))
    shorter["nodes"]["language"]["prompt"] = ["lang_choice_zh", "lang_choice_yue",
                                              "lang_choice_en"]
    assert _upload(client, token, shorter).status_code == 303
    assert client.post("/flows/3/publish", data={"csrf_token": token}).status_code == 303
    assert client.post("/flows/rollback", data={"csrf_token": token}).status_code == 303
    page = client.get("/flows/").get_data(as_text=True)
    assert "版本 1" in page.split("</h1>")[0]
    # An uploaded flow under another name is refused: the engine runs "default".
    other = dict(doc, name="other")
    assert _upload(client, token, other).status_code == 400


def test_a_test_call_shows_the_path_the_prompts_and_the_audio(as_role: Any) -> None:
    client, token = as_role("supervisor")
    shorter = json.loads(DEFAULT_FLOW.read_text("utf-8"))
    shorter["nodes"]["language"]["prompt"] = ["lang_choice_zh", "lang_choice_yue",
                                              "lang_choice_en"]
    assert _upload(client, token, shorter).status_code == 303
    res = client.post("/flows/1/test", data={"csrf_token": token, "keys": "3 5"})
    html = res.get_data(as_text=True)
    assert res.status_code == 200
    path = html.split('id="trial-path"')[1].split("</table>")[0]
    assert "<td>language</td>" in path and "language=en" in path and "key=5" in path
    prompts = html.split('id="trial-prompts"')[1].split("</ol>")[0]
    # The draft's greeting (no welcome), then the English menus it leads to.
    assert "zh/welcome" not in prompts and "zh/lang_choice_en" in prompts
    assert prompts.index("en/main_menu") < prompts.index("en/info_menu")
    audio_url = html.split('<audio controls preload="auto" src="')[1].split('"')[0]
    wav = client.get(audio_url)
    assert wav.status_code == 200 and wav.data[:4] == b"RIFF" and len(wav.data) > 8000 * 2 * 3
    assert client.get("/flows/test/../../etc/passwd.wav").status_code == 404
    assert client.get("/flows/test/" + "0" * 32 + ".wav").status_code == 404
    bad = client.post("/flows/1/test", data={"csrf_token": token, "keys": "1 x"})
    assert bad.status_code == 303
