"""Voicemail: boxes with greetings, crash-safe messages with their envelope, triage, and
playback by phone for salespeople. The public surface is re-exported here; the IVR calls
:func:`leave_message` and :func:`salesperson_messages`, the web the triage functions, and the
engine is given :func:`recovery_hook` so a message a crash cut short is listed after a
restart."""

from appliance.voicemail.audit import AuditEntry, audit_trail
from appliance.voicemail.boxes import (
    Box,
    BoxKind,
    box_for,
    clear_greeting,
    general_box,
    get_box,
    greeting,
    list_boxes,
    queue_box,
    salesperson_box,
    set_greeting,
)
from appliance.voicemail.messages import (
    Message,
    box_messages,
    get_message,
    recover_messages,
    recovery_hook,
)
from appliance.voicemail.phone import salesperson_messages
from appliance.voicemail.record import leave_message
from appliance.voicemail.triage import (
    Category,
    Notification,
    Overdue,
    TriageError,
    assign,
    categories,
    categorise,
    forward,
    mark_done,
    mark_heard,
    mark_notification_sent,
    messages,
    notifications,
    overdue,
    reopen,
    retire_category,
    salesperson_inbox,
    save_category,
)

__all__ = [
    "AuditEntry", "Box", "BoxKind", "Category", "Message", "Notification", "Overdue",
    "TriageError", "assign", "audit_trail", "box_for", "box_messages", "categories", "categorise",
    "clear_greeting", "forward", "general_box", "get_box", "get_message", "greeting",
    "leave_message", "list_boxes", "mark_done", "mark_heard", "mark_notification_sent",
    "messages", "notifications", "overdue", "queue_box", "recover_messages", "recovery_hook",
    "reopen", "retire_category", "salesperson_box", "salesperson_inbox",
    "salesperson_messages", "save_category", "set_greeting",
]
