"""The triage service layer the web pages will call: states, categories, assignment and
forwarding with notifications, the salesperson's list, overdue messages, the audit trail."""

from __future__ import annotations

from pathlib import Path

import pytest

from appliance.store.db import Store
from appliance.voicemail import (
    TriageError,
    assign,
    audit_trail,
    categories,
    categorise,
    forward,
    general_box,
    mark_done,
    mark_heard,
    mark_notification_sent,
    messages,
    notifications,
    overdue,
    queue_box,
    reopen,
    retire_category,
    salesperson_inbox,
    save_category,
)
from tests.voicemail.conftest import make_message

T0 = 1_780_000_000.0
HOUR = 3600.0


def test_categories_start_with_the_five_and_are_editable(store: Store) -> None:
    assert [(c.code, c.name_zh, c.target_hours) for c in categories(store)] == [
        ("complaint", "投诉", 24.0), ("suggestion", "建议", 72.0), ("claim", "理赔", 4.0),
        ("policy_service", "保单服务", 24.0), ("other", "其他", 48.0)]
    save_category(store, "renewal", "续期缴费", "Renewal", 8, actor="admin", now=T0)
    save_category(store, "complaint", "投诉", "Complaint", 12, actor="admin", now=T0 + 1)
    retire_category(store, "suggestion", actor="admin", now=T0 + 2)
    listed = {c.code: c for c in categories(store)}
    assert list(listed) == ["complaint", "claim", "policy_service", "other", "renewal"]
    assert listed["complaint"].target_hours == 12.0 and listed["complaint"].position == 1
    assert "suggestion" in {c.code for c in categories(store, include_retired=True)}
    # Bad input is refused with the reason, and changes nothing.
    with pytest.raises(TriageError, match="lower-case"):
        save_category(store, "Bad Code", "坏", "Bad", 1, actor="admin", now=T0)
    with pytest.raises(TriageError, match="> 0 hours"):
        save_category(store, "late", "迟", "Late", 0, actor="admin", now=T0)
    with pytest.raises(TriageError, match="no category 'nope'"):
        retire_category(store, "nope", actor="admin", now=T0)
    assert len(categories(store, include_retired=True)) == 6
    actions = store.query("SELECT actor, action, detail FROM voicemail_audit ORDER BY id")
    assert [(a["actor"], a["action"]) for a in actions] == [
        ("admin", "category-saved"), ("admin", "category-saved"), ("admin", "category-retired")]


def test_a_message_through_triage_with_its_audit_trail(store: Store, tmp_path: Path) -> None:
    box = general_box(store)
    msg = make_message(store, box, tmp_path, received_at=T0)
    assert msg.status == "new" and [m.id for m in messages(store, status="new")] == [msg.id]

    mark_heard(store, msg.id, actor="clerk.li", now=T0 + 60)
    categorise(store, msg.id, "complaint", actor="clerk.li", now=T0 + 70)
    got = assign(store, msg.id, "S001", actor="clerk.li", now=T0 + 80, note="请今天回电")
    assert (got.status, got.assignee, got.category) == ("assigned", "S001", "complaint")
    [note] = notifications(store, salesperson_code="S001")
    assert (note.voicemail_id, note.sent_at) == (msg.id, None) and "请今天回电" in note.text
    assert [m.id for m in salesperson_inbox(store, "S001", only_new=True)] == [msg.id]

    # Forwarded: it leaves the first salesperson's list and is new in the second's.
    forward(store, msg.id, "S002", actor="S001", now=T0 + 90)
    assert salesperson_inbox(store, "S001") == []
    assert [m.id for m in salesperson_inbox(store, "S002", only_new=True)] == [msg.id]
    assert [n.salesperson_code for n in notifications(store)] == ["S001", "S002"]
    mark_notification_sent(store, note.id, T0 + 95)
    assert [n.salesperson_code for n in notifications(store)] == ["S002"]

    heard = mark_heard(store, msg.id, actor="S002", now=T0 + 100)
    assert heard.status == "assigned" and heard.assignee_heard_at == T0 + 100
    assert salesperson_inbox(store, "S002", only_new=True) == []
    assert [m.id for m in salesperson_inbox(store, "S002")] == [msg.id]

    done = mark_done(store, msg.id, actor="S002", now=T0 + 200, note="已回电")
    assert (done.status, done.done_at) == ("done", T0 + 200)
    assert salesperson_inbox(store, "S002") == []
    assert [m.id for m in messages(store, status="done")] == [msg.id]

    trail = [(e.at, e.actor, e.action, e.detail) for e in audit_trail(store, msg.id)]
    assert trail[1:] == [
        (T0 + 60, "clerk.li", "heard", {}),
        (T0 + 70, "clerk.li", "categorise", {"category": "complaint"}),
        (T0 + 80, "clerk.li", "assign", {"to": "S001", "note": "请今天回电"}),
        (T0 + 90, "S001", "forward", {"to": "S002", "from": "S001"}),
        (T0 + 100, "S002", "heard", {}),
        (T0 + 200, "S002", "done", {"note": "已回电"}),
    ]
    assert trail[0][1:3] == ("system", "saved")

    again = reopen(store, msg.id, actor="supervisor", now=T0 + 300)
    assert (again.status, again.done_at, again.assignee) == ("assigned", None, "S002")


def test_actions_that_do_not_apply_are_refused_and_change_nothing(
        store: Store, tmp_path: Path) -> None:
    msg = make_message(store, general_box(store), tmp_path)
    before = len(audit_trail(store, msg.id))
    with pytest.raises(TriageError, match="no salesperson with code 'S999'"):
        assign(store, msg.id, "S999", actor="clerk", now=T0)
    with pytest.raises(TriageError, match="'fraud' is not a category in use"):
        categorise(store, msg.id, "fraud", actor="clerk", now=T0)
    retire_category(store, "other", actor="admin", now=T0)
    with pytest.raises(TriageError, match="'other' is not a category in use"):
        categorise(store, msg.id, "other", actor="clerk", now=T0)
    with pytest.raises(TriageError, match="no voicemail 12345"):
        mark_heard(store, 12345, actor="clerk", now=T0)
    with pytest.raises(ValueError, match="actor must be named"):
        mark_heard(store, msg.id, actor=" ", now=T0)
    with pytest.raises(TriageError, match="not done"):
        reopen(store, msg.id, actor="clerk", now=T0)
    assign(store, msg.id, "S001", actor="clerk", now=T0)
    with pytest.raises(TriageError, match="already assigned to S001"):
        assign(store, msg.id, "S001", actor="clerk", now=T0)
    mark_done(store, msg.id, actor="clerk", now=T0)
    with pytest.raises(TriageError, match="already done"):
        mark_done(store, msg.id, actor="clerk", now=T0)
    with pytest.raises(TriageError, match="is done; it cannot be assigned"):
        assign(store, msg.id, "S002", actor="clerk", now=T0)
    with pytest.raises(TriageError, match="status 'open'"):
        messages(store, status="open")
    after = store.query("SELECT status, assignee, category FROM voicemails WHERE id = ?",
                        [msg.id])
    assert after == [{"status": "done", "assignee": "S001", "category": None}]
    assert [e.action for e in audit_trail(store, msg.id)][before:] == ["assign", "done"]
    assert [n.salesperson_code for n in notifications(store)] == ["S001"]


def test_overdue_by_category_target(store: Store, tmp_path: Path) -> None:
    box = queue_box(store, "service")
    claim = make_message(store, box, tmp_path, received_at=T0, seed=1)
    complaint = make_message(store, box, tmp_path, received_at=T0 + HOUR, seed=2)
    untriaged = make_message(store, box, tmp_path, received_at=T0 + 2 * HOUR, seed=3)
    categorise(store, claim.id, "claim", actor="clerk", now=T0)  # 4 h
    categorise(store, complaint.id, "complaint", actor="clerk", now=T0)  # 24 h

    assert overdue(store, T0 + 3 * HOUR) == []
    late = overdue(store, T0 + 5 * HOUR)
    assert [(o.message.id, o.due_at) for o in late] == [(claim.id, T0 + 4 * HOUR)]
    # Uncategorised messages are held to 24 h, so nobody forgets one in the pile.
    late = overdue(store, T0 + 26.5 * HOUR)
    assert [(o.message.id, o.due_at) for o in late] == [
        (claim.id, T0 + 4 * HOUR), (complaint.id, T0 + 25 * HOUR),
        (untriaged.id, T0 + 26 * HOUR)]
    # A message dealt with is not overdue; a changed target applies at once.
    mark_done(store, claim.id, actor="clerk", now=T0 + 27 * HOUR)
    save_category(store, "complaint", "投诉", "Complaint", 48, actor="admin", now=T0)
    assert [o.message.id for o in overdue(store, T0 + 26.5 * HOUR)] == [untriaged.id]


def test_lists_filter_and_leave_out_unfinished_rows(store: Store, tmp_path: Path) -> None:
    from appliance.voicemail.messages import open_message

    general, claims = general_box(store), queue_box(store, "claims")
    a = make_message(store, general, tmp_path, received_at=T0, seed=1)
    b = make_message(store, claims, tmp_path, received_at=T0 + 10, seed=2)
    open_message(store, claims, call_id="live", caller="1", received_at=T0 + 20, lang="zh",
                 directory=tmp_path).result()  # being recorded now
    assert [m.id for m in messages(store)] == [b.id, a.id]
    assert [m.id for m in messages(store, box_id=claims.id)] == [b.id]
    categorise(store, a.id, "claim", actor="clerk", now=T0)
    assert [m.id for m in messages(store, category="claim")] == [a.id]
    assign(store, b.id, "S003", actor="clerk", now=T0)
    assert [m.id for m in messages(store, assignee="S003")] == [b.id]
