"""Who may do what in the web admin: the one permission matrix.

Every view the app serves is named here by its endpoint (``blueprint.view``) with the
roles that may call it; :func:`check_matrix` refuses to start an app with a route missing
from :data:`ENDPOINTS` (or an entry naming no route), so a new page cannot escape the
matrix. Endpoints in :data:`PUBLIC` need no login; those in :data:`ANY_USER` need a login
and nothing more. :data:`CAPABILITIES` are finer rights inside a page that is already
allowed, such as seeing customers' phone numbers in full (F14).
"""

from __future__ import annotations

from collections.abc import Iterable

ROLES = ("admin", "supervisor", "agent", "salesperson", "auditor")

ADMIN = frozenset({"admin"})
MANAGERS = frozenset({"admin", "supervisor"})
READERS = frozenset({"admin", "supervisor", "agent", "auditor"})
EVERYONE = frozenset(ROLES)

# No login: the login page itself, the language switch and static files.
PUBLIC = frozenset({"auth.login", "auth.language", "static"})

# Logged in, any role, even before the first password change.
ANY_USER = frozenset({"auth.logout", "auth.password"})

ENDPOINTS: dict[str, frozenset[str]] = {
    "home.index": EVERYONE,
    # Staff accounts and the audit log.
    "staff.list": ADMIN,
    "staff.create": ADMIN,
    "staff.edit": ADMIN,
    "staff.reset_password": ADMIN,
    "staff.reset_phone_pin": ADMIN,
    "staff.backup": ADMIN,
    "staff.audit_view": frozenset({"admin", "auditor"}),
    # Policies.
    # Not salespeople: the book is every salesperson's customers; a salesperson hears
    # their own figures by phone and quotes here.
    "policies.list": READERS,
    "policies.detail": READERS,
    "policies.export": frozenset({"admin", "supervisor", "auditor"}),
    "policies.import_form": MANAGERS,
    "policies.import_upload": MANAGERS,
    "policies.template": MANAGERS,
    # The progress of an import the user is uploading (every import is a manager's).
    "imports.progress": MANAGERS,
    # Salespeople.
    "salespeople.list": READERS,
    "salespeople.edit": MANAGERS,
    "salespeople.reset_pin": MANAGERS,
    "salespeople.export": frozenset({"admin", "supervisor", "auditor"}),
    "salespeople.import_upload": MANAGERS,
    "salespeople.template": MANAGERS,
    # Customers (personal data: every view is audited).
    "customers.list": READERS,
    "customers.detail": READERS,
    "customers.export": MANAGERS,
    "customers.import_upload": MANAGERS,
    "customers.template": MANAGERS,
    # Products, rate tables and the quote calculator.
    "products.list": EVERYONE,
    "products.detail": EVERYONE,
    "products.quote_view": EVERYONE,
    "products.create": MANAGERS,
    "products.edit": MANAGERS,
    "products.rates_export": frozenset({"admin", "supervisor", "auditor"}),
    "products.rates_import": MANAGERS,
    "products.rates_grid": MANAGERS,
    # Voice prompts: listen (the staff who answer the callers), replace (admin).
    "prompts.list": READERS,
    "prompts.audio": READERS,
    "prompts.replace": ADMIN,
    # An admin's own PIN for recording prompts by phone (the recording line's login).
    "prompts.phone_pin": ADMIN,
    # The IVR flow: read it (the staff who answer the callers), check a document.
    "flows.view": READERS,
    "flows.check": MANAGERS,
    "flows.draft": MANAGERS,
    # Editing a version node by node saves a new draft: the same people as an upload.
    "flows.node_form": MANAGERS,
    "flows.node_save": MANAGERS,
    "flows.node_add": MANAGERS,
    "flows.node_delete": MANAGERS,
    "flows.publish": MANAGERS,
    "flows.rollback": MANAGERS,
    "flows.test_call": MANAGERS,
    "flows.test_audio": MANAGERS,
    # Line usage from the call records (no numbers shown).
    "lines.list": frozenset({"admin", "supervisor", "auditor"}),
    # The box's ports and SMS modem: the live state and the DAHDI text are read by those
    # who read the lines; only the admin changes the box's settings or tests the modem.
    "lines.events": frozenset({"admin", "supervisor", "auditor"}),
    "lines.config": frozenset({"admin", "supervisor", "auditor"}),
    "lines.port_edit": ADMIN,
    "lines.port_save": ADMIN,
    "lines.span_add": ADMIN,
    "lines.port_delete": ADMIN,
    "lines.modem_save": ADMIN,
    "lines.modem_test": ADMIN,
    # Reports (figures only, no personal data).
    "reports.index": frozenset({"admin", "supervisor", "auditor"}),
    "reports.export": frozenset({"admin", "supervisor", "auditor"}),
    # Premium reminders: their settings, the attempt log (holders' numbers) and "run now".
    "reminders.index": MANAGERS,
    "reminders.save_settings": MANAGERS,
    "reminders.run_now": MANAGERS,
    "reminders.export": MANAGERS,
    # Call records.
    "calls.list": frozenset({"admin", "supervisor", "agent", "auditor"}),
    "calls.export": frozenset({"admin", "supervisor", "auditor"}),
    # Voicemail triage. Seat agents work the queue boxes (the page checks the box's kind);
    # a salesperson has only their own list, and the messages on it (checked by message).
    # Auditors read everything and may hear the trimmed copy (a complaint's handling is
    # judged on what the caller said; each playback is audited) but never take the raw
    # recording away.
    "voicemail.boxes": READERS,
    "voicemail.inbox": READERS,
    "voicemail.message": EVERYONE,
    "voicemail.play": EVERYONE,
    "voicemail.raw": frozenset({"admin", "supervisor", "agent"}),
    "voicemail.categorise": frozenset({"admin", "supervisor", "agent"}),
    "voicemail.assign": frozenset({"admin", "supervisor", "agent"}),
    "voicemail.done": frozenset({"admin", "supervisor", "agent", "salesperson"}),
    "voicemail.reopen": frozenset({"admin", "supervisor", "agent"}),
    "voicemail.categories": frozenset({"admin", "supervisor", "auditor"}),
    "voicemail.category_save": ADMIN,
    "voicemail.category_retire": ADMIN,
    "voicemail.mine": frozenset({"salesperson"}),
    # The fax log: destinations are masked without see_phone; resending dials out.
    "faxes.list": READERS,
    "faxes.preview": READERS,
    "faxes.resend": MANAGERS,
    # The seat console (agents, and supervisors who take calls) and the supervisor page.
    "console.index": frozenset({"admin", "supervisor", "agent"}),
    "console.seat_login": frozenset({"admin", "supervisor", "agent"}),
    "console.seat_logout": frozenset({"admin", "supervisor", "agent"}),
    "console.state": frozenset({"admin", "supervisor", "agent"}),
    "console.hangup": frozenset({"admin", "supervisor", "agent"}),
    "console.wrap_up": frozenset({"admin", "supervisor", "agent"}),
    "console.hold": frozenset({"admin", "supervisor", "agent"}),
    "console.unhold": frozenset({"admin", "supervisor", "agent"}),
    "console.transfer": frozenset({"admin", "supervisor", "agent"}),
    "console.consult_complete": frozenset({"admin", "supervisor", "agent"}),
    "console.consult_return": frozenset({"admin", "supervisor", "agent"}),
    "console.conference": frozenset({"admin", "supervisor", "agent"}),
    "console.events": frozenset({"admin", "supervisor", "agent"}),
    # Call recordings. Admin, supervisors and auditors (quality checks, complaints) list
    # and play every recording; a seat agent lists and plays only the calls they answered
    # (the page checks each recording); only admin and supervisors take a copy away. Every
    # playback and download is a row of the recording access log, which admin and
    # auditors read.
    "recordings.list": READERS,
    "recordings.play": READERS,
    "recordings.download": MANAGERS,
    "recordings.access": frozenset({"admin", "auditor"}),
    "supervisor.index": MANAGERS,
    "supervisor.events": MANAGERS,
    # A supervisor's silent listen-in and whisper; click-to-dial from a customer's record
    # or the screen pop (the number stays on the server: agents may dial, never see it).
    "supervisor.listen": MANAGERS,
    "supervisor.listen_mode": MANAGERS,
    "supervisor.listen_stop": MANAGERS,
    "console.dial": frozenset({"admin", "supervisor", "agent"}),
    # Orders (F9): the seats keep them for customers; the admin defines their fields.
    "orders.list": READERS,
    "orders.detail": READERS,
    "orders.create": frozenset({"admin", "supervisor", "agent"}),
    "orders.edit": frozenset({"admin", "supervisor", "agent"}),
    "orders.export": frozenset({"admin", "supervisor", "auditor"}),
    "orders.import_upload": MANAGERS,
    "orders.template": MANAGERS,
    "order_fields.list": ADMIN,
    "order_fields.edit": ADMIN,
    # The knowledge base (F13): everyone reads it; admins and supervisors write it.
    "kb.list": EVERYONE,
    "kb.article": EVERYONE,
    "kb.panel": frozenset({"admin", "supervisor", "agent"}),
    "kb.create": MANAGERS,
    "kb.edit": MANAGERS,
    "kb.delete": MANAGERS,
    "kb.export": MANAGERS,
    "kb.import_upload": MANAGERS,
    # SMS (F8): the staff who talk to customers send and read them (numbers masked
    # without see_phone); the whole list leaves the box only with a manager.
    "sms.list": frozenset({"admin", "supervisor", "agent"}),
    "sms.compose": frozenset({"admin", "supervisor", "agent"}),
    "sms.send": frozenset({"admin", "supervisor", "agent"}),
    "sms.export": MANAGERS,
    # The box's settings: business hours and holidays (read by the IVR at each call).
    "hours.view": frozenset({"admin", "supervisor", "auditor"}),
    "hours.save_week": ADMIN,
    "hours.add_day": ADMIN,
    "hours.delete_day": ADMIN,
    "hours.import_days": ADMIN,
    # Queues and seats (what the engine loads; a save is offered to the running engine).
    "acd_settings.view": frozenset({"admin", "supervisor", "auditor"}),
    "acd_settings.queue_save": ADMIN,
    "acd_settings.queue_delete": ADMIN,
    "acd_settings.seat_save": ADMIN,
    "acd_settings.seat_delete": ADMIN,
    # Restore of a backup archive: replaces the database and the recordings.
    "restore.form": ADMIN,
    "restore.check": ADMIN,
    "restore.apply": ADMIN,
    "restore.cancel": ADMIN,
}

CAPABILITIES: dict[str, frozenset[str]] = {
    # Customers' and callers' phone numbers in full; others see 138****1234.
    "see_phone": MANAGERS,
}


def allowed(endpoint: str, role: str) -> bool:
    """May ``role`` call ``endpoint``? Public and any-user endpoints are allowed."""
    if endpoint in PUBLIC or endpoint in ANY_USER:
        return True
    return role in ENDPOINTS.get(endpoint, frozenset())


def can(role: str, capability: str) -> bool:
    return role in CAPABILITIES[capability]


def check_matrix(endpoints: Iterable[str]) -> None:
    """Raise if a served endpoint is not in the matrix, or the matrix names one not served."""
    served = set(endpoints)
    known = set(ENDPOINTS) | PUBLIC | ANY_USER
    missing = sorted(served - known)
    stale = sorted(known - served)
    if missing or stale:
        raise RuntimeError("permission matrix out of step with the routes: "
                           f"not in the matrix {missing}, no such route {stale}")
    for endpoint, roles in ENDPOINTS.items():
        unknown = roles - set(ROLES)
        if unknown:
            raise RuntimeError(f"{endpoint}: unknown roles {sorted(unknown)}")
