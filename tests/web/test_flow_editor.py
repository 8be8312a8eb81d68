"""Editing an IVR flow node by node: each save a new draft with exactly that change, bad
values named and nothing saved, deletes refused while other nodes lead to the node."""

from __future__ import annotations

import io
import json
from html import unescape
from html.parser import HTMLParser
from typing import Any

from appliance.ivr import versions
from appliance.store.db import Store
from web.flows import DEFAULT_FLOW


class _Form(HTMLParser):
    """The values a browser would submit from the page's node form (the one saving)."""

    def __init__(self) -> None:
        super().__init__()
        self.values: dict[str, str] = {}
        self._in = False
        self._select: str | None = None
        self._textarea: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self._in = "/delete" not in a.get("action", "") and "/node/" in a.get("action", "")
        elif not self._in:
            return
        elif tag == "input" and "name" in a:
            self.values[a["name"]] = a.get("value", "")
        elif tag == "select":
            self._select = a["name"]
            self.values.setdefault(a["name"], "")
        elif tag == "option" and self._select and "selected" in a:
            self.values[self._select] = a.get("value", "")
        elif tag == "textarea":
            self._textarea = a["name"]
            self.values[a["name"]] = ""

    def handle_data(self, data: str) -> None:
        if self._textarea:
            self.values[self._textarea] += data

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._in = False
        elif tag == "select":
            self._select = None
        elif tag == "textarea":
            self._textarea = None


def _form(client: Any, url: str) -> dict[str, str]:
    res = client.get(url)
    assert res.status_code == 200, url
    parser = _Form()
    parser.feed(res.get_data(as_text=True))
    parser.values.pop("csrf_token")  # each test posts the session's own, or none
    return parser.values


def _published_default(client: Any, token: str) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(DEFAULT_FLOW.read_text("utf-8"))
    res = client.post("/flows/draft", data={"csrf_token": token, "file": (
        io.BytesIO(json.dumps(doc).encode()), "flow.json")}, content_type="multipart/form-data")
    assert res.status_code == 303
    assert client.post("/flows/1/publish", data={"csrf_token": token}).status_code == 303
    return doc


def _key_row(values: dict[str, str], key: str) -> str:
    return next(k.replace(".key.", ".to.") for k, v in values.items()
                if k.startswith("options.key.") and v == key)


def test_a_menu_key_edited_makes_a_draft_with_only_that_change(as_role: Any,
                                                               store: Store) -> None:
    client, token = as_role("supervisor")
    doc = _published_default(client, token)
    page = client.get("/flows/?version=1").get_data(as_text=True)
    # The diagram: a box per node, linking to its form; a line per key, labelled.
    assert page.count('<a class="node') == len(doc["nodes"])
    assert 'href="/flows/1/node/main"' in page
    assert '<g class="edge" data-from="main" data-to="pol_number">' in page
    values = _form(client, "/flows/1/node/main")
    assert values["prompt"] == "main_menu menu_conference" and values["retries"] == "2"
    assert values[_key_row(values, "1")] == "pol_number"
    # Key 9 repeats the menu; it now goes to the information menu instead.
    assert values[_key_row(values, "9")] == "main"
    values[_key_row(values, "9")] = "info"
    res = client.post("/flows/1/node/main", data={**values, "csrf_token": token})
    assert res.status_code == 303 and res.headers["Location"].endswith("/flows/?version=2")
    new = versions.get_version(store, "default", 2)
    old = versions.get_version(store, "default", 1)
    assert new is not None and old is not None
    assert new.status == "draft" and old.status == "published"
    assert old.document["nodes"] == doc["nodes"]  # the published version is untouched
    expected = json.loads(json.dumps(doc["nodes"]))
    expected["main"]["options"]["9"] = "info"
    assert new.document["nodes"] == expected
    assert {k: v for k, v in new.document.items() if k != "nodes"} == {
        **{k: v for k, v in doc.items() if k != "nodes"}, "version": 2}
    # The valid draft says so; the diagram now draws key 9 to info, not back to main.
    page = client.get("/flows/?version=2").get_data(as_text=True)
    edges = [e.split("</g>")[0] for e in page.split('<g class="edge')[1:]]
    assert any('data-from="main" data-to="info"' in e and "按 9" in e for e in edges)
    assert not any('data-from="main" data-to="main"' in e for e in edges)
    assert 'id="draft-problems"' not in page
    audit = store.query("SELECT username, action, target, detail FROM audit_log "
                        "WHERE action LIKE 'flow.node%'")
    assert [(a["username"], a["action"], a["target"]) for a in audit] == [
        ("supervisor", "flow.node_save", "default/2")]
    assert json.loads(audit[0]["detail"]) == {"node": "main", "based_on": 1}
    # Saving the form unchanged makes no version.
    values = _form(client, "/flows/2/node/main")
    assert client.post("/flows/2/node/main",
                       data={**values, "csrf_token": token}).status_code == 303
    assert len(versions.versions(store, "default")) == 2


def test_bad_values_are_named_and_nothing_is_saved(as_role: Any, store: Store) -> None:
    client, token = as_role("supervisor")
    _published_default(client, token)
    values = _form(client, "/flows/1/node/main")
    values[_key_row(values, "2")] = "nowhere"
    values["retries"] = "two"
    values["timeout"] = "-1"
    values["options.key.8"] = "x"  # a spare row: not a phone key
    values["options.to.8"] = "main"
    values["on_invalid"] = ""
    res = client.post("/flows/1/node/main", data={**values, "csrf_token": token})
    html = res.get_data(as_text=True)
    assert res.status_code == 400 and "没有保存：有 5 个值不正确" in html
    alert = unescape(html.split('role="alert"')[1].split("</div>")[0])
    for named in ("'nowhere'", "retries：'two'", "timeout：'-1'", "'x' 不是电话按键",
                  "必须填写 on_invalid"):
        assert named in alert, named
    # The form keeps what was typed, to be corrected.
    assert 'value="x"' in html
    assert len(versions.versions(store, "default")) == 1


def test_an_invalid_draft_is_saved_with_its_problems_beside_it(as_role: Any,
                                                               store: Store) -> None:
    client, token = as_role("supervisor")
    _published_default(client, token)
    values = _form(client, "/flows/1/node/main")
    values["prompt"] = "main_menu no_such_prompt"
    res = client.post("/flows/1/node/main", data={**values, "csrf_token": token})
    assert res.status_code == 303
    page = client.get("/flows/?version=2").get_data(as_text=True)
    problems = page.split('id="draft-problems"')[1].split("</section>")[0]
    assert "no_such_prompt" in problems and "<td>main</td>" in problems
    # Publishing refuses it, and the published version stays the live one.
    assert client.post("/flows/2/publish", data={"csrf_token": token}).status_code == 400
    live = versions.published_version(store, "default")
    assert live is not None and live.version == 1


def test_a_node_is_added_and_deleted_only_when_nothing_leads_to_it(as_role: Any,
                                                                   store: Store) -> None:
    client, token = as_role("supervisor")
    _published_default(client, token)
    # Deleting a node others lead to is refused, naming them.
    res = client.post("/flows/1/node/pol_number/delete", data={"csrf_token": token})
    assert res.status_code == 303
    html = client.get(res.headers["Location"]).get_data(as_text=True)
    assert "pol_number 没有删除" in html and "main" in html.split('role="alert"')[1]
    assert len(versions.versions(store, "default")) == 1
    # A new node: id and type first, then its form; required fields are asked for.
    res = client.post("/flows/1/nodes", data={"csrf_token": token, "node_id": "bye2",
                                              "type": "play"})
    assert res.status_code == 303
    values = _form(client, res.headers["Location"])
    assert values["type"] == "play" and values["next"] == ""
    res = client.post("/flows/1/node/bye2", data={**values, "csrf_token": token})
    assert res.status_code == 400 and "next" in res.get_data(as_text=True)
    values.update(prompts="goodbye", next="bye")
    res = client.post("/flows/1/node/bye2", data={**values, "csrf_token": token})
    assert res.status_code == 303
    added = versions.get_version(store, "default", 2)
    assert added is not None
    assert added.document["nodes"]["bye2"] == {"type": "play", "prompts": ["goodbye"],
                                               "next": "bye"}
    page = client.get("/flows/?version=2").get_data(as_text=True)
    assert "bye2" in page.split('id="draft-problems"')[1]  # nothing leads to it yet
    # An id in use, or a bad one, is refused.
    for bad in ("main", "a b", ""):
        res = client.post("/flows/2/nodes", data={"csrf_token": token, "node_id": bad,
                                                  "type": "play"})
        assert res.status_code == 303 and res.headers["Location"].endswith("?version=2")
    # Nothing leads to the new node: it can go, as version 3.
    res = client.post("/flows/2/node/bye2/delete", data={"csrf_token": token})
    assert res.status_code == 303 and res.headers["Location"].endswith("?version=3")
    gone = versions.get_version(store, "default", 3)
    assert gone is not None and "bye2" not in gone.document["nodes"]
    actions = [r["action"] for r in store.query(
        "SELECT action FROM audit_log WHERE action LIKE 'flow.node%' ORDER BY id")]
    assert actions == ["flow.node_add", "flow.node_delete"]


def test_edits_need_the_csrf_token_and_a_manager(as_role: Any, store: Store) -> None:
    client, token = as_role("supervisor")
    _published_default(client, token)
    values = _form(client, "/flows/1/node/main")
    res = client.post("/flows/1/node/main", data=values)  # no token
    assert res.status_code in (400, 403)
    res = client.post("/flows/1/node/main", data={**values, "csrf_token": "forged"})
    assert res.status_code in (400, 403)
    agent, agent_token = as_role("agent")
    assert agent.get("/flows/1/node/main").status_code == 403
    assert agent.post("/flows/1/node/main",
                      data={**values, "csrf_token": agent_token}).status_code == 403
    # An agent sees the diagram, its boxes leading to the table rows, not to a form.
    page = agent.get("/flows/?version=1").get_data(as_text=True)
    assert 'href="#node-main"' in page and "/flows/1/node/" not in page
    assert len(versions.versions(store, "default")) == 1
