"""The schema of the appliance database, as an ordered list of migrations.

Each step is a ``(name, function)`` pair; :func:`migrate` applies the pending ones through
sqlite-utils' :class:`~sqlite_utils.Migrations`, which runs each step and the row recording
it (table ``_sqlite_migrations``, set ``appliance``) in one transaction, so a step that
fails leaves nothing behind and stays pending. Steps are append-only: a shipped step is
never edited, a change is a new step. The DDL is written out in SQL rather than built with
``table.create()`` so that a step creates the same schema whichever sqlite-utils version
runs it. The module-level ``migrations`` object also lets an operator inspect a box's
database with ``sqlite-utils migrate --list appliance.db appliance/store/migrations.py``.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Callable, Sequence

from sqlite_utils import Database, Migrations

MIGRATION_SET = "appliance"

MigrationFn = Callable[[Database], None]
Step = tuple[str, MigrationFn]


def _calls(db: Database) -> None:
    # The CDR: one row a call, written by the engine as the call goes, final once ended_at
    # is set. STRICT so that a wrong type is refused instead of stored.
    db.execute(
        """
        CREATE TABLE calls (
            call_id TEXT PRIMARY KEY NOT NULL,
            line TEXT NOT NULL,
            driver TEXT NOT NULL,
            direction TEXT NOT NULL CHECK (direction IN ('in', 'out')),
            caller TEXT NOT NULL,
            callee TEXT NOT NULL,
            started_at REAL NOT NULL,
            answered_at REAL,
            ended_at REAL,
            end_cause TEXT,
            recording TEXT,
            keys TEXT NOT NULL DEFAULT ''
        ) STRICT
        """
    )
    db.execute("CREATE INDEX calls_started_at ON calls (started_at)")
    db.execute("CREATE INDEX calls_caller ON calls (caller)")


def _recordings(db: Database) -> None:
    # No foreign key to calls: a recording recovered after a crash can belong to a call
    # whose CDR row never reached the disk, and it must still be indexed.
    db.execute(
        """
        CREATE TABLE recordings (
            path TEXT PRIMARY KEY NOT NULL,
            call_id TEXT,
            started_at REAL,
            frames INTEGER NOT NULL,
            seconds REAL NOT NULL,
            recovered INTEGER NOT NULL DEFAULT 0 CHECK (recovered IN (0, 1)),
            indexed_at REAL NOT NULL
        ) STRICT
        """
    )
    db.execute("CREATE INDEX recordings_call_id ON recordings (call_id)")


def _insurance(db: Database) -> None:
    # The insurance book the IVR and the admin read. Money is INTEGER fen (exact, and sums
    # in SQL stay exact); rates are TEXT decimals because they carry four places and must
    # not pass through a float. ID card numbers are never stored: only a salted hash, the
    # masked form shown on pages, and the last four characters the IVR verifies against
    # (the masked form already shows them, so hashing them would hide nothing).
    db.execute(
        """
        CREATE TABLE products (
            code TEXT PRIMARY KEY NOT NULL,
            name_zh TEXT NOT NULL,
            name_en TEXT NOT NULL,
            kind TEXT NOT NULL
                CHECK (kind IN ('term_life', 'accident', 'critical_illness', 'motor')),
            clauses_zh TEXT NOT NULL DEFAULT '',
            clauses_en TEXT NOT NULL DEFAULT '',
            min_sum_fen INTEGER NOT NULL,
            max_sum_fen INTEGER NOT NULL
        ) STRICT
        """
    )
    # One row a cell of the rate table. A NULL dimension means "any" (accident cover is
    # not priced by sex, motor not by age); age and vehicle-value bands are inclusive.
    db.execute(
        """
        CREATE TABLE rates (
            id INTEGER PRIMARY KEY,
            product_code TEXT NOT NULL REFERENCES products (code),
            age_min INTEGER,
            age_max INTEGER,
            sex TEXT CHECK (sex IN ('M', 'F')),
            term INTEGER,
            payment_mode TEXT CHECK (payment_mode IN ('annual', 'monthly', 'single')),
            value_min_fen INTEGER,
            value_max_fen INTEGER,
            seats_min INTEGER,
            seats_max INTEGER,
            rate_per_1000 TEXT NOT NULL,
            base_fen INTEGER NOT NULL DEFAULT 0
        ) STRICT
        """
    )
    db.execute("CREATE INDEX rates_product ON rates (product_code)")
    db.execute(
        """
        CREATE TABLE customers (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL,
            sex TEXT CHECK (sex IN ('M', 'F')),
            birthday TEXT,
            phone TEXT,
            id_salt TEXT NOT NULL,
            id_hash TEXT NOT NULL,
            id_masked TEXT NOT NULL,
            id_last4 TEXT NOT NULL
        ) STRICT
        """
    )
    db.execute("CREATE INDEX customers_phone ON customers (phone)")
    db.execute(
        """
        CREATE TABLE salespeople (
            code TEXT PRIMARY KEY NOT NULL,
            name TEXT NOT NULL,
            branch TEXT NOT NULL,
            licence_no TEXT NOT NULL,
            licence_status TEXT NOT NULL
                CHECK (licence_status IN ('valid', 'expired', 'suspended')),
            phone TEXT,
            pin_hash TEXT NOT NULL,
            failed_pins INTEGER NOT NULL DEFAULT 0,
            locked INTEGER NOT NULL DEFAULT 0 CHECK (locked IN (0, 1))
        ) STRICT
        """
    )
    db.execute("CREATE INDEX salespeople_branch ON salespeople (branch)")
    db.execute(
        """
        CREATE TABLE policies (
            number TEXT PRIMARY KEY NOT NULL,
            product_code TEXT NOT NULL REFERENCES products (code),
            holder_id INTEGER NOT NULL REFERENCES customers (id),
            insured_id INTEGER NOT NULL REFERENCES customers (id),
            status TEXT NOT NULL
                CHECK (status IN ('in_force', 'lapsed', 'surrendered', 'pending')),
            sum_insured_fen INTEGER NOT NULL,
            premium_fen INTEGER NOT NULL,
            payment_mode TEXT NOT NULL CHECK (payment_mode IN ('annual', 'monthly', 'single')),
            term INTEGER,
            issued_on TEXT NOT NULL,
            next_due_date TEXT,
            next_due_fen INTEGER,
            salesperson_code TEXT REFERENCES salespeople (code)
        ) STRICT
        """
    )
    db.execute("CREATE INDEX policies_holder ON policies (holder_id)")
    db.execute("CREATE INDEX policies_insured ON policies (insured_id)")
    db.execute("CREATE INDEX policies_salesperson ON policies (salesperson_code)")
    # Premium reminders select by status and due date.
    db.execute("CREATE INDEX policies_status_due ON policies (status, next_due_date)")
    db.execute(
        """
        CREATE TABLE commissions (
            salesperson_code TEXT NOT NULL REFERENCES salespeople (code),
            month TEXT NOT NULL,
            commission_fen INTEGER NOT NULL,
            premium_fen INTEGER NOT NULL,
            policies_sold INTEGER NOT NULL,
            PRIMARY KEY (salesperson_code, month)
        ) STRICT
        """
    )
    db.execute(
        """
        CREATE TABLE claims (
            case_number TEXT PRIMARY KEY NOT NULL,
            policy_number TEXT NOT NULL REFERENCES policies (number),
            reported_at TEXT NOT NULL,
            caller TEXT,
            description_recording TEXT,
            status TEXT NOT NULL DEFAULT 'reported'
                CHECK (status IN ('reported', 'investigating', 'approved', 'rejected',
                                  'paid', 'closed'))
        ) STRICT
        """
    )
    db.execute("CREATE INDEX claims_policy ON claims (policy_number)")
    db.execute("CREATE INDEX claims_reported_at ON claims (reported_at)")


def _call_ivr_path(db: Database) -> None:
    # The IVR path of each call (nodes, keys, lookup results; secrets masked) as JSON.
    db.execute("ALTER TABLE calls ADD COLUMN ivr_path TEXT")


def _voicemail(db: Database) -> None:
    # Voicemail: boxes (the general one, one per queue, one per salesperson), their
    # greetings, the messages with their envelope and triage state, editable categories
    # with a response-time target, notifications for salespeople, and an audit trail.
    db.execute(
        """
        CREATE TABLE voicemail_boxes (
            id INTEGER PRIMARY KEY,
            kind TEXT NOT NULL CHECK (kind IN ('general', 'queue', 'salesperson')),
            queue TEXT,
            salesperson_code TEXT REFERENCES salespeople (code),
            CHECK ((kind = 'general' AND queue IS NULL AND salesperson_code IS NULL)
                OR (kind = 'queue' AND queue IS NOT NULL AND salesperson_code IS NULL)
                OR (kind = 'salesperson' AND queue IS NULL AND salesperson_code IS NOT NULL))
        ) STRICT
        """
    )
    # One box of each identity; COALESCE because UNIQUE treats NULLs as distinct.
    db.execute(
        "CREATE UNIQUE INDEX voicemail_boxes_identity ON voicemail_boxes"
        " (kind, COALESCE(queue, ''), COALESCE(salesperson_code, ''))"
    )
    db.execute(
        """
        CREATE TABLE voicemail_greetings (
            box_id INTEGER NOT NULL REFERENCES voicemail_boxes (id),
            lang TEXT NOT NULL CHECK (lang IN ('zh', 'yue', 'en')),
            path TEXT NOT NULL,
            set_at REAL NOT NULL,
            set_by TEXT NOT NULL,
            PRIMARY KEY (box_id, lang)
        ) STRICT
        """
    )
    db.execute(
        """
        CREATE TABLE voicemail_categories (
            code TEXT PRIMARY KEY NOT NULL,
            name_zh TEXT NOT NULL,
            name_en TEXT NOT NULL,
            target_hours REAL NOT NULL CHECK (target_hours > 0),
            position INTEGER NOT NULL DEFAULT 0,
            retired INTEGER NOT NULL DEFAULT 0 CHECK (retired IN (0, 1))
        ) STRICT
        """
    )
    db.conn.executemany(
        "INSERT INTO voicemail_categories (code, name_zh, name_en, target_hours, position)"
        " VALUES (?, ?, ?, ?, ?)",
        [
            ("complaint", "投诉", "Complaint", 24.0, 1),
            ("suggestion", "建议", "Suggestion", 72.0, 2),
            ("claim", "理赔", "Claim", 4.0, 3),
            ("policy_service", "保单服务", "Policy service", 24.0, 4),
            ("other", "其他", "Other", 48.0, 5),
        ],
    )
    # A message row is written before its first frame is recorded (state 'recording'),
    # so a crash leaves a row that start-up recovery completes from the recovered file.
    db.execute(
        """
        CREATE TABLE voicemails (
            id INTEGER PRIMARY KEY,
            box_id INTEGER NOT NULL REFERENCES voicemail_boxes (id),
            call_id TEXT NOT NULL,
            caller TEXT NOT NULL,
            received_at REAL NOT NULL,
            lang TEXT NOT NULL CHECK (lang IN ('zh', 'yue', 'en')),
            ivr_path TEXT NOT NULL DEFAULT '[]',
            policy_number TEXT,
            raw_path TEXT NOT NULL,
            play_path TEXT,
            recording TEXT NOT NULL DEFAULT 'recording'
                CHECK (recording IN ('recording', 'saved', 'recovered', 'lost')),
            end_reason TEXT,
            seconds REAL,
            speech_seconds REAL,
            empty INTEGER CHECK (empty IN (0, 1)),
            status TEXT NOT NULL DEFAULT 'new'
                CHECK (status IN ('new', 'heard', 'assigned', 'done')),
            category TEXT REFERENCES voicemail_categories (code),
            assignee TEXT REFERENCES salespeople (code),
            assigned_at REAL,
            assignee_heard_at REAL,
            done_at REAL
        ) STRICT
        """
    )
    db.execute("CREATE INDEX voicemails_box ON voicemails (box_id, received_at)")
    db.execute("CREATE INDEX voicemails_assignee ON voicemails (assignee, assignee_heard_at)")
    db.execute("CREATE INDEX voicemails_status ON voicemails (status, received_at)")
    db.execute("CREATE INDEX voicemails_recording ON voicemails (recording)")
    # Until an SMS service exists, a notification is a row it will send (sent_at NULL).
    db.execute(
        """
        CREATE TABLE voicemail_notifications (
            id INTEGER PRIMARY KEY,
            salesperson_code TEXT NOT NULL REFERENCES salespeople (code),
            voicemail_id INTEGER NOT NULL REFERENCES voicemails (id),
            created_at REAL NOT NULL,
            text TEXT NOT NULL,
            sent_at REAL
        ) STRICT
        """
    )
    db.execute("CREATE INDEX voicemail_notifications_unsent ON voicemail_notifications"
               " (sent_at, created_at)")
    db.execute(
        """
        CREATE TABLE voicemail_audit (
            id INTEGER PRIMARY KEY,
            at REAL NOT NULL,
            actor TEXT NOT NULL,
            action TEXT NOT NULL,
            voicemail_id INTEGER REFERENCES voicemails (id),
            box_id INTEGER REFERENCES voicemail_boxes (id),
            detail TEXT NOT NULL DEFAULT '{}'
        ) STRICT
        """
    )
    db.execute("CREATE INDEX voicemail_audit_message ON voicemail_audit (voicemail_id, id)")


def _flow_versions(db: Database) -> None:
    # Every saved version of every IVR flow; the partial unique index allows one published
    # version per flow, so a half-done publish cannot leave two live.
    db.execute(
        """
        CREATE TABLE flow_versions (
            name TEXT NOT NULL,
            version INTEGER NOT NULL CHECK (version > 0),
            status TEXT NOT NULL CHECK (status IN ('draft', 'published', 'retired')),
            document TEXT NOT NULL,
            created_at REAL NOT NULL,
            created_by TEXT NOT NULL,
            published_at REAL,
            published_by TEXT,
            PRIMARY KEY (name, version)
        ) STRICT
        """
    )
    db.execute("CREATE UNIQUE INDEX flow_versions_published ON flow_versions (name)"
               " WHERE status = 'published'")


def _fax(db: Database) -> None:
    # One row a fax attempt (a callback fax tried three times is three rows sharing a job).
    # The document is stored by kind and parameters, not only as a file, so it can be
    # rendered again and resent after the TIFF was cleaned up.
    db.execute(
        """
        CREATE TABLE faxes (
            id INTEGER PRIMARY KEY,
            job TEXT NOT NULL,
            attempt INTEGER NOT NULL CHECK (attempt >= 1),
            mode TEXT NOT NULL CHECK (mode IN ('same-call', 'poll', 'callback')),
            document TEXT NOT NULL,
            params TEXT NOT NULL DEFAULT '{}',
            tiff TEXT NOT NULL,
            destination TEXT NOT NULL,
            call_id TEXT,
            started_at REAL NOT NULL,
            pages INTEGER NOT NULL DEFAULT 0,
            pages_in_file INTEGER,
            bit_rate INTEGER NOT NULL DEFAULT 0,
            ecm INTEGER NOT NULL DEFAULT 0 CHECK (ecm IN (0, 1)),
            duration REAL NOT NULL DEFAULT 0,
            ok INTEGER NOT NULL CHECK (ok IN (0, 1)),
            result TEXT NOT NULL,
            completion_code INTEGER,
            reason TEXT NOT NULL DEFAULT ''
        ) STRICT
        """
    )
    db.execute("CREATE INDEX faxes_started_at ON faxes (started_at)")
    db.execute("CREATE INDEX faxes_job ON faxes (job, attempt)")


def _acd(db: Database) -> None:
    # Seats and queues as configured (the web shows and later edits them), every agent
    # state change with its time and reason, each caller's stay in a queue with its outcome,
    # and booked callbacks. No foreign key from entries to calls: a callback entry outlives
    # the call that booked it, and records must be written even when the CDR row is late.
    db.execute(
        """
        CREATE TABLE acd_seats (
            id TEXT PRIMARY KEY NOT NULL,
            number TEXT NOT NULL,
            driver TEXT NOT NULL,
            name TEXT NOT NULL DEFAULT '',
            skills TEXT NOT NULL DEFAULT '{}',
            updated_at REAL NOT NULL
        ) STRICT
        """
    )
    db.execute(
        """
        CREATE TABLE acd_agent_states (
            id INTEGER PRIMARY KEY,
            seat_id TEXT NOT NULL,
            agent TEXT NOT NULL DEFAULT '',
            state TEXT NOT NULL CHECK (state IN ('logged-out', 'ready', 'not-ready', 'ringing',
                                                 'talking', 'wrap-up')),
            reason TEXT NOT NULL DEFAULT '',
            at REAL NOT NULL
        ) STRICT
        """
    )
    db.execute("CREATE INDEX acd_agent_states_seat ON acd_agent_states (seat_id, at)")
    db.execute(
        """
        CREATE TABLE acd_queues (
            name TEXT PRIMARY KEY NOT NULL,
            strategy TEXT NOT NULL,
            config TEXT NOT NULL,
            updated_at REAL NOT NULL
        ) STRICT
        """
    )
    db.execute(
        """
        CREATE TABLE acd_queue_members (
            queue TEXT NOT NULL REFERENCES acd_queues (name),
            seat_id TEXT NOT NULL,
            penalty INTEGER NOT NULL DEFAULT 0,
            PRIMARY KEY (queue, seat_id)
        ) STRICT
        """
    )
    db.execute(
        """
        CREATE TABLE acd_entries (
            key TEXT PRIMARY KEY NOT NULL,
            queue TEXT NOT NULL,
            call_id TEXT NOT NULL,
            caller TEXT NOT NULL,
            language TEXT NOT NULL,
            priority INTEGER NOT NULL,
            joined_at REAL NOT NULL,
            ended_at REAL,
            outcome TEXT CHECK (outcome IN ('answered', 'abandoned', 'voicemail', 'callback',
                                            'callback-answered', 'callback-failed',
                                            'shutdown')),
            waited_seconds REAL,
            answered_by TEXT,
            talk_seconds REAL,
            offers INTEGER NOT NULL DEFAULT 0
        ) STRICT
        """
    )
    db.execute("CREATE INDEX acd_entries_queue ON acd_entries (queue, joined_at)")
    db.execute(
        """
        CREATE TABLE acd_callbacks (
            id INTEGER PRIMARY KEY,
            entry_key TEXT NOT NULL REFERENCES acd_entries (key),
            queue TEXT NOT NULL,
            number TEXT NOT NULL,
            requested_at REAL NOT NULL,
            placed_at REAL,
            call_id TEXT,
            seat_id TEXT,
            outcome TEXT CHECK (outcome IN ('answered', 'no-answer', 'failed', 'shutdown'))
        ) STRICT
        """
    )
    db.execute("CREATE INDEX acd_callbacks_entry ON acd_callbacks (entry_key)")


def _web(db: Database) -> None:
    # The web admin's staff accounts, its login throttle and its audit log, and the indexes
    # its search pages need on the insurance book and the CDR.
    db.execute(
        """
        CREATE TABLE users (
            id INTEGER PRIMARY KEY,
            username TEXT NOT NULL UNIQUE COLLATE NOCASE,
            display_name TEXT NOT NULL DEFAULT '',
            role TEXT NOT NULL
                CHECK (role IN ('admin', 'supervisor', 'agent', 'salesperson', 'auditor')),
            password_hash TEXT NOT NULL,
            must_change INTEGER NOT NULL DEFAULT 1 CHECK (must_change IN (0, 1)),
            active INTEGER NOT NULL DEFAULT 1 CHECK (active IN (0, 1)),
            -- Bumped whenever the password changes: sessions carry it, and one issued
            -- under an older password is refused.
            password_version INTEGER NOT NULL DEFAULT 1,
            created_at REAL NOT NULL,
            last_login_at REAL
        ) STRICT
        """
    )
    # Failed logins, by username and by client address, for throttling; old rows pruned.
    db.execute(
        """
        CREATE TABLE login_failures (
            id INTEGER PRIMARY KEY,
            username TEXT NOT NULL COLLATE NOCASE,
            address TEXT NOT NULL,
            at REAL NOT NULL
        ) STRICT
        """
    )
    db.execute("CREATE INDEX login_failures_username ON login_failures (username, at)")
    db.execute("CREATE INDEX login_failures_address ON login_failures (address, at)")
    # Every change made through the web and every view of personal data. Append-only.
    db.execute(
        """
        CREATE TABLE audit_log (
            id INTEGER PRIMARY KEY,
            at REAL NOT NULL,
            username TEXT NOT NULL,
            role TEXT NOT NULL,
            address TEXT NOT NULL,
            action TEXT NOT NULL,
            target TEXT NOT NULL DEFAULT '',
            detail TEXT NOT NULL DEFAULT '{}'
        ) STRICT
        """
    )
    db.execute("CREATE INDEX audit_log_at ON audit_log (at)")
    db.execute("CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log "
               "BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END")
    db.execute("CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log "
               "BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END")
    # Search pages: customers by name prefix, an import matching a holder by name and the
    # ID's last four, policies by product, status and salesperson in number order (the
    # list's order, so a page is read off the index without sorting), calls by the number
    # called.
    db.execute("CREATE INDEX customers_name ON customers (name)")
    db.execute("CREATE INDEX customers_last4_name ON customers (id_last4, name)")
    db.execute("CREATE INDEX policies_product ON policies (product_code, number)")
    db.execute("CREATE INDEX policies_status_product ON policies (status, product_code, number)")
    db.execute("CREATE INDEX policies_salesperson_number ON policies (salesperson_code, number)")
    db.execute("CREATE INDEX calls_callee ON calls (callee)")


def _acd_survey(db: Database) -> None:
    # Etiquette measured per call (not asked): how long the seat rang before it answered,
    # who hung up first, the holds and their length, and the satisfaction score keyed after
    # the agent hung up. The agent's code is kept with the entry so a seat that changes
    # hands is summed per person. Holds get a row each (the reminder count too); rooms of
    # the teleconference keep only PIN hashes, and their events say who came, went, was
    # muted or dropped.
    for column in ("agent TEXT", "ring_seconds REAL", "rings INTEGER",
                   "hung_up_first TEXT CHECK (hung_up_first IN ('caller', 'agent', 'box'))",
                   "hold_count INTEGER NOT NULL DEFAULT 0",
                   "hold_seconds REAL NOT NULL DEFAULT 0",
                   "survey_score INTEGER CHECK (survey_score BETWEEN 1 AND 5)",
                   "survey_status TEXT CHECK (survey_status IN ('scored', 'no-score', "
                   "'hung-up'))",
                   "survey_at REAL"):
        db.execute(f"ALTER TABLE acd_entries ADD COLUMN {column}")
    db.execute("CREATE INDEX acd_entries_agent ON acd_entries (agent, joined_at)")
    db.execute(
        """
        CREATE TABLE acd_holds (
            id INTEGER PRIMARY KEY,
            entry_key TEXT NOT NULL REFERENCES acd_entries (key),
            seat_id TEXT NOT NULL,
            agent TEXT NOT NULL DEFAULT '',
            started_at REAL NOT NULL,
            ended_at REAL,
            seconds REAL,
            reminders INTEGER NOT NULL DEFAULT 0
        ) STRICT
        """
    )
    db.execute("CREATE INDEX acd_holds_entry ON acd_holds (entry_key)")
    db.execute(
        """
        CREATE TABLE conference_rooms (
            room TEXT PRIMARY KEY NOT NULL CHECK (room GLOB '[0-9]*' AND length(room) <= 8),
            name TEXT NOT NULL DEFAULT '',
            pin_hash TEXT NOT NULL,
            host_pin_hash TEXT NOT NULL,
            max_parties INTEGER NOT NULL DEFAULT 8 CHECK (max_parties BETWEEN 2 AND 8),
            created_at REAL NOT NULL
        ) STRICT
        """
    )
    db.execute(
        """
        CREATE TABLE conference_events (
            id INTEGER PRIMARY KEY,
            room TEXT NOT NULL,
            call_id TEXT NOT NULL,
            caller TEXT NOT NULL DEFAULT '',
            event TEXT NOT NULL CHECK (event IN ('join', 'leave', 'mute', 'unmute', 'drop',
                                                 'refused-pin', 'refused-full')),
            host INTEGER NOT NULL DEFAULT 0,
            at REAL NOT NULL
        ) STRICT
        """
    )
    db.execute("CREATE INDEX conference_events_room ON conference_events (room, at)")


def _fax_resend(db: Database) -> None:
    # Resends asked for on the web admin, which has no engine: the page queues a row, the
    # engine's poller (appliance.fax.requests) claims it, sends the fax again as a new
    # callback job and writes back how it went.
    db.execute(
        """
        CREATE TABLE fax_resend_requests (
            id INTEGER PRIMARY KEY,
            fax_id INTEGER NOT NULL REFERENCES faxes (id),
            number TEXT,
            requested_at REAL NOT NULL,
            requested_by TEXT NOT NULL,
            status TEXT NOT NULL DEFAULT 'queued'
                CHECK (status IN ('queued', 'sending', 'sent', 'failed')),
            picked_at REAL,
            finished_at REAL,
            job TEXT,
            result TEXT NOT NULL DEFAULT ''
        ) STRICT
        """
    )
    db.execute("CREATE INDEX fax_resend_requests_status ON fax_resend_requests (status, id)")
    db.execute("CREATE INDEX fax_resend_requests_fax ON fax_resend_requests (fax_id, id)")


def _call_wrapups(db: Database) -> None:
    # What the agent noted at the end of a call answered at a seat (the seat console's
    # wrap-up): one row a call, a code from a fixed list and a free note. Written by the
    # engine on the agent's request through the control API.
    db.execute(
        """
        CREATE TABLE call_wrapups (
            call_id TEXT PRIMARY KEY NOT NULL,
            seat_id TEXT NOT NULL,
            agent TEXT NOT NULL,
            code TEXT NOT NULL,
            note TEXT NOT NULL DEFAULT '',
            at REAL NOT NULL
        ) STRICT
        """
    )


def _customer_peers(db: Database) -> None:
    # Cross-sell hints count the customers of one sex and ten-year age band (by birthday).
    db.execute("CREATE INDEX customers_sex_birthday ON customers (sex, birthday)")


def _prompt_phone(db: Database) -> None:
    # Recording prompts over the phone: each staff account's phone PIN (hashed like the
    # salespeople's, with their lockout counter), and a number for each prompt that never
    # changes once given, so the number an admin keys today is the one the page showed.
    db.execute(
        """
        CREATE TABLE staff_phone_pins (
            user_id INTEGER PRIMARY KEY NOT NULL REFERENCES users (id),
            pin_hash TEXT NOT NULL,
            failed_pins INTEGER NOT NULL DEFAULT 0,
            locked INTEGER NOT NULL DEFAULT 0 CHECK (locked IN (0, 1)),
            set_at REAL NOT NULL
        ) STRICT
        """
    )
    db.execute(
        """
        CREATE TABLE prompt_numbers (
            number INTEGER PRIMARY KEY NOT NULL,
            name TEXT NOT NULL UNIQUE
        ) STRICT
        """
    )


def _acd_listen(db: Database) -> None:
    # A supervisor's silent listen-in and whisper: one row for each start, change of mode
    # and end (who, on which seat's call, from which phone), kept as the ACD's own log.
    db.execute(
        """
        CREATE TABLE acd_monitor_log (
            id INTEGER PRIMARY KEY,
            monitor TEXT NOT NULL,
            action TEXT NOT NULL CHECK (action IN ('start', 'joined', 'mode', 'stop')),
            mode TEXT NOT NULL CHECK (mode IN ('listen', 'whisper')),
            seat_id TEXT NOT NULL,
            agent TEXT NOT NULL,
            entry_key TEXT NOT NULL,
            phone_seat TEXT NOT NULL,
            supervisor TEXT NOT NULL,
            call_id TEXT,
            why TEXT NOT NULL DEFAULT '',
            at REAL NOT NULL
        ) STRICT
        """
    )
    db.execute("CREATE INDEX acd_monitor_log_monitor ON acd_monitor_log (monitor, id)")
    db.execute("CREATE INDEX acd_monitor_log_at ON acd_monitor_log (at)")
    # Click-to-dial: the agent's seat is rung first, then the customer; the number is the
    # customer's (looked up by the web, never sent by the browser) and also in the CDR.
    db.execute(
        """
        CREATE TABLE acd_dials (
            key TEXT PRIMARY KEY NOT NULL,
            seat_id TEXT NOT NULL,
            agent TEXT NOT NULL,
            customer TEXT NOT NULL DEFAULT '',
            queue TEXT NOT NULL,
            requested_at REAL NOT NULL,
            seat_call_id TEXT,
            call_id TEXT,
            outcome TEXT,
            ended_at REAL
        ) STRICT
        """
    )
    db.execute("CREATE INDEX acd_dials_requested ON acd_dials (requested_at)")
    # A dialled call is a seat's conversation like a queue call (etiquette, survey, hold
    # rows hang on its acd_entries row), with outcomes of its own.
    _allow_values(db, "acd_entries", "outcome", ("dialled", "dial-failed"))


def _allow_values(db: Database, table: str, column: str, values: tuple[str, ...]) -> None:
    """Widen ``column``'s ``CHECK (column IN (...))`` list by ``values``. SQLite cannot alter
    a CHECK constraint, and rebuilding the table would fight the foreign keys that point at
    it; allowing more values changes no stored row, so the schema text is rewritten in
    place as sqlite.org/lang_altertable.html ("other kinds of table schema changes")
    describes, with the schema version bumped so every connection reads it again."""
    (sql,) = db.execute("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?",
                        [table]).fetchone()
    found = re.search(rf"{column} TEXT CHECK \({column} IN \(([^)]*)\)\)", sql)
    if found is None:
        raise ValueError(f"{table}.{column}: no CHECK (... IN (...)) list to widen")
    allowed = [v.strip() for v in found.group(1).split(",")]
    allowed += [f"'{v}'" for v in values if f"'{v}'" not in allowed]
    widened = sql[:found.start(1)] + ", ".join(allowed) + sql[found.end(1):]
    (version,) = db.execute("PRAGMA schema_version").fetchone()
    db.execute("PRAGMA writable_schema = ON")
    try:
        db.execute("UPDATE sqlite_master SET sql = ? WHERE type = 'table' AND name = ?",
                   [widened, table])
        db.execute(f"PRAGMA schema_version = {int(version) + 1}")
    finally:
        db.execute("PRAGMA writable_schema = OFF")


def _orders_kb(db: Database) -> None:
    # Orders (F9): business records a seat keeps for a customer (a policy application, an
    # endorsement, a claim-document request...) with a status, and the fields the admin
    # defines for them. A field's values live in the order's ``field_values`` JSON by the
    # field's name, so adding a field needs no schema change; a retired field keeps its
    # values on the orders that have them.
    db.execute(
        """
        CREATE TABLE order_fields (
            name TEXT PRIMARY KEY NOT NULL,
            label_zh TEXT NOT NULL,
            label_en TEXT NOT NULL,
            type TEXT NOT NULL CHECK (type IN ('text', 'number', 'date', 'choice')),
            options TEXT NOT NULL DEFAULT '[]',
            required INTEGER NOT NULL DEFAULT 0 CHECK (required IN (0, 1)),
            position INTEGER NOT NULL DEFAULT 0,
            active INTEGER NOT NULL DEFAULT 1 CHECK (active IN (0, 1))
        ) STRICT
        """
    )
    db.execute(
        """
        CREATE TABLE orders (
            id INTEGER PRIMARY KEY,
            customer_id INTEGER NOT NULL REFERENCES customers (id),
            kind TEXT NOT NULL
                CHECK (kind IN ('application', 'endorsement', 'claim_documents', 'other')),
            status TEXT NOT NULL
                CHECK (status IN ('open', 'in_progress', 'done', 'cancelled')),
            policy_number TEXT,
            field_values TEXT NOT NULL DEFAULT '{}',
            created_at REAL NOT NULL,
            created_by TEXT NOT NULL,
            updated_at REAL NOT NULL,
            updated_by TEXT NOT NULL
        ) STRICT
        """
    )
    db.execute("CREATE INDEX orders_customer ON orders (customer_id, status)")
    db.execute("CREATE INDEX orders_status ON orders (status, id)")
    # The knowledge base (F13): articles the seats read beside a call.
    db.execute(
        """
        CREATE TABLE kb_articles (
            id INTEGER PRIMARY KEY,
            title TEXT NOT NULL,
            body TEXT NOT NULL,
            category TEXT NOT NULL,
            lang TEXT NOT NULL CHECK (lang IN ('zh', 'en', 'yue')),
            tags TEXT NOT NULL DEFAULT '',
            created_at REAL NOT NULL,
            updated_at REAL NOT NULL,
            updated_by TEXT NOT NULL
        ) STRICT
        """
    )
    # Full-text search that works for Chinese, which has no spaces between words: FTS5's
    # trigram tokenizer (SQLite 3.34+) indexes every three characters, so any substring of
    # three or more is found through the index; shorter queries (理赔 is two characters)
    # are a LIKE on the same table. A SQLite without the tokenizer gets no index and the
    # search uses LIKE throughout (web/kb_search.py checks which).
    try:
        db.execute(
            "CREATE VIRTUAL TABLE kb_fts USING fts5(title, body, tags, content='kb_articles',"
            " content_rowid='id', tokenize='trigram')")
    except sqlite3.OperationalError:  # no such tokenizer: trigram
        return
    db.execute("CREATE TRIGGER kb_fts_insert AFTER INSERT ON kb_articles BEGIN"
               " INSERT INTO kb_fts (rowid, title, body, tags)"
               " VALUES (new.id, new.title, new.body, new.tags); END")
    db.execute("CREATE TRIGGER kb_fts_delete AFTER DELETE ON kb_articles BEGIN"
               " INSERT INTO kb_fts (kb_fts, rowid, title, body, tags)"
               " VALUES ('delete', old.id, old.title, old.body, old.tags); END")
    db.execute("CREATE TRIGGER kb_fts_update AFTER UPDATE ON kb_articles BEGIN"
               " INSERT INTO kb_fts (kb_fts, rowid, title, body, tags)"
               " VALUES ('delete', old.id, old.title, old.body, old.tags);"
               " INSERT INTO kb_fts (rowid, title, body, tags)"
               " VALUES (new.id, new.title, new.body, new.tags); END")


def _line_ports(db: Database) -> None:
    # The box's telephone ports as the admin set them (appliance/box/ports.py checks a row
    # before it is written), and the SMS modem's serial settings (one row).
    db.execute(
        """
        CREATE TABLE line_ports (
            channel INTEGER PRIMARY KEY NOT NULL CHECK (channel > 0),
            kind TEXT NOT NULL CHECK (kind IN ('fxo', 'fxs', 'e1')),
            signalling TEXT NOT NULL,
            caller_id TEXT NOT NULL DEFAULT 'none',
            route_kind TEXT NOT NULL DEFAULT 'none',
            route_target TEXT NOT NULL DEFAULT '',
            reserved_inbound INTEGER NOT NULL DEFAULT 0 CHECK (reserved_inbound IN (0, 1)),
            label TEXT NOT NULL DEFAULT '',
            updated_at REAL NOT NULL,
            updated_by TEXT NOT NULL
        ) STRICT
        """
    )
    db.execute(
        """
        CREATE TABLE sms_modem (
            id INTEGER PRIMARY KEY NOT NULL CHECK (id = 1),
            device TEXT NOT NULL,
            baud INTEGER NOT NULL,
            smsc TEXT NOT NULL DEFAULT '',
            enabled INTEGER NOT NULL DEFAULT 0 CHECK (enabled IN (0, 1)),
            updated_at REAL NOT NULL,
            updated_by TEXT NOT NULL
        ) STRICT
        """
    )


def _box_settings(db: Database) -> None:
    # The box's business hours, edited in the web admin and read by the IVR's hours node at
    # each call: one row a weekday range (several a day allowed, half-open [opens, closes)).
    db.execute(
        """
        CREATE TABLE business_hours (
            weekday TEXT NOT NULL
                CHECK (weekday IN ('mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun')),
            opens TEXT NOT NULL,
            closes TEXT NOT NULL,
            PRIMARY KEY (weekday, opens)
        ) STRICT
        """
    )
    # Public holidays (closed all day) and make-up working days (调休: a weekend day worked
    # with the hours of the weekday in works_as).
    db.execute(
        """
        CREATE TABLE holidays (
            date TEXT PRIMARY KEY NOT NULL,
            name TEXT NOT NULL,
            kind TEXT NOT NULL CHECK (kind IN ('holiday', 'workday')),
            works_as TEXT
                CHECK (works_as IS NULL OR works_as IN ('mon', 'tue', 'wed', 'thu', 'fri'))
        ) STRICT
        """
    )
    # Small box-wide settings by key; 'hours' is set once the admin has saved the hours, so
    # until then the IVR keeps the hours written in its flow.
    db.execute(
        """
        CREATE TABLE box_settings (
            key TEXT PRIMARY KEY NOT NULL,
            value TEXT NOT NULL,
            updated_at REAL NOT NULL
        ) STRICT
        """
    )


def _recording_access(db: Database) -> None:
    # The recordings page: each call's policy number keyed in the IVR (searchable, so a
    # column with an index rather than a look inside the IVR path's JSON), recordings
    # newest first and by call, queue entries by call and by time for every queue (the
    # supervisor's date ranges and staffing estimate), and the recording access log: every
    # playback and download, append-only like the audit log.
    db.execute("ALTER TABLE calls ADD COLUMN policy_number TEXT")
    # Calls from before this step: the policy number is the last one keyed into the
    # default flow's policy and claim questions, as its IVR path recorded it.
    db.execute(
        """
        UPDATE calls SET policy_number = (
            SELECT json_extract(s.value, '$.digits') FROM json_each(calls.ivr_path) AS s
            WHERE json_extract(s.value, '$.type') = 'collect'
              AND (json_extract(s.value, '$.into') IN ('pol_no', 'cl_no')
                   OR json_extract(s.value, '$.node') IN ('pol_number', 'cl_number'))
              AND json_extract(s.value, '$.digits') GLOB '[0-9]*'
            ORDER BY s.key DESC LIMIT 1)
        WHERE ivr_path IS NOT NULL AND json_valid(ivr_path)
        """
    )
    db.execute("CREATE INDEX calls_policy_number ON calls (policy_number, started_at)"
               " WHERE policy_number IS NOT NULL")
    db.execute("CREATE INDEX recordings_started_at ON recordings (started_at)")
    # An agent's recordings are read off their queue entries: both indexes cover what that
    # search reads (entry → call → recording's time), so it never opens a table row.
    db.execute("CREATE INDEX recordings_call_started ON recordings (call_id, started_at)")
    db.execute("CREATE INDEX acd_entries_agent_call ON acd_entries (agent, joined_at, call_id)")
    db.execute("CREATE INDEX acd_entries_call ON acd_entries (call_id)")
    db.execute("CREATE INDEX acd_entries_joined_at ON acd_entries (joined_at)")
    db.execute(
        """
        CREATE TABLE recording_access (
            id INTEGER PRIMARY KEY,
            at REAL NOT NULL,
            username TEXT NOT NULL,
            role TEXT NOT NULL,
            address TEXT NOT NULL,
            kind TEXT NOT NULL CHECK (kind IN ('play', 'download')),
            path TEXT NOT NULL,
            call_id TEXT
        ) STRICT
        """
    )
    db.execute("CREATE INDEX recording_access_at ON recording_access (at)")
    db.execute("CREATE INDEX recording_access_path ON recording_access (path, username, at)")
    db.execute("CREATE TRIGGER recording_access_no_update BEFORE UPDATE ON recording_access "
               "BEGIN SELECT RAISE(ABORT, 'recording_access is append-only'); END")
    db.execute("CREATE TRIGGER recording_access_no_delete BEFORE DELETE ON recording_access "
               "BEGIN SELECT RAISE(ABORT, 'recording_access is append-only'); END")


def _acd_transfers(db: Database) -> None:
    # Each transfer an agent made (blind, consult, 3-way conference): to what (a seat, a
    # queue, an outside number), whether the target answered and whether it did so before
    # the agent left (etiquette, O5), and how it ended. ``entry_key`` is the conversation
    # the agent transferred from; ``to_entry`` the one the caller had at the target seat or
    # queue, when there was one.
    db.execute(
        """
        CREATE TABLE acd_transfers (
            key TEXT PRIMARY KEY NOT NULL,
            entry_key TEXT NOT NULL REFERENCES acd_entries (key),
            call_id TEXT NOT NULL,
            seat_id TEXT NOT NULL,
            agent TEXT NOT NULL DEFAULT '',
            kind TEXT NOT NULL CHECK (kind IN ('blind', 'consult', 'conference')),
            target_kind TEXT NOT NULL CHECK (target_kind IN ('seat', 'queue', 'number')),
            target TEXT NOT NULL,
            started_at REAL NOT NULL,
            answered_at REAL,
            agent_left_at REAL,
            answered_before_agent_left INTEGER CHECK (answered_before_agent_left IN (0, 1)),
            outcome TEXT CHECK (outcome IN ('answered', 'no-answer', 'completed', 'returned',
                                            'target-hung-up', 'caller-hung-up', 'failed')),
            ended_at REAL,
            to_entry TEXT
        ) STRICT
        """
    )
    db.execute("CREATE INDEX acd_transfers_call ON acd_transfers (call_id, started_at)")
    db.execute("CREATE INDEX acd_transfers_agent ON acd_transfers (agent, started_at)")


def _reminders(db: Database) -> None:
    # Premium reminder calls (MISSION R11): the one row of settings the web edits, and
    # every attempt to reach a holder about one due date. A policy is reminded once per
    # due date: its attempts are numbered 1.. per (policy, due date, channel), and a final
    # outcome ends them. `channel` leaves room for SMS beside calls.
    db.execute(
        """
        CREATE TABLE reminder_settings (
            id INTEGER PRIMARY KEY CHECK (id = 1),
            enabled INTEGER NOT NULL CHECK (enabled IN (0, 1)),
            days_ahead INTEGER NOT NULL CHECK (days_ahead BETWEEN 0 AND 60),
            overdue_days INTEGER NOT NULL CHECK (overdue_days BETWEEN 0 AND 90),
            window_start TEXT NOT NULL,
            window_end TEXT NOT NULL,
            max_concurrent INTEGER NOT NULL CHECK (max_concurrent BETWEEN 1 AND 30),
            retry_minutes INTEGER NOT NULL CHECK (retry_minutes BETWEEN 1 AND 1440),
            max_attempts INTEGER NOT NULL CHECK (max_attempts BETWEEN 1 AND 10),
            updated_at REAL NOT NULL,
            updated_by TEXT NOT NULL
        ) STRICT
        """
    )
    db.execute(
        """
        CREATE TABLE reminder_attempts (
            id INTEGER PRIMARY KEY,
            policy_number TEXT NOT NULL,
            due_date TEXT NOT NULL,
            channel TEXT NOT NULL DEFAULT 'call' CHECK (channel IN ('call', 'sms')),
            attempt INTEGER NOT NULL CHECK (attempt >= 1),
            number TEXT NOT NULL,
            language TEXT NOT NULL CHECK (language IN ('zh', 'yue', 'en')),
            started_at REAL NOT NULL,
            ended_at REAL,
            outcome TEXT CHECK (outcome IS NULL OR outcome IN ('confirmed', 'transferred',
                'heard', 'hung_up', 'busy', 'no_answer', 'congested', 'failed')),
            detail TEXT NOT NULL DEFAULT '',
            call_id TEXT,
            next_retry_at REAL,
            UNIQUE (policy_number, due_date, channel, attempt)
        ) STRICT
        """
    )
    db.execute("CREATE INDEX reminder_attempts_started_at ON reminder_attempts (started_at)")
    db.execute("CREATE INDEX reminder_attempts_outcome ON reminder_attempts (outcome, started_at)")
    # The language a customer is called in (none: the one they last chose calling the
    # hotline, found by their number in the queue entries; else the box's, Mandarin).
    db.execute("ALTER TABLE customers ADD COLUMN language TEXT"
               " CHECK (language IS NULL OR language IN ('zh', 'yue', 'en'))")
    db.execute("CREATE INDEX acd_entries_caller ON acd_entries (caller, joined_at)")


def _sms(db: Database) -> None:
    # SMS both ways through the box's GSM modem. The web queues outgoing rows; the engine's
    # SMS service sends them (queued -> sending -> sent / failed, retried after
    # ``next_try_at`` on a temporary refusal, ``refs`` the message references of the parts
    # the network took, so a retry sends only the rest) and stores each received message
    # as a ``received`` row. ``sent_at`` is when the network took the last part, or for a
    # received one the network's timestamp. ``sim_key`` (the PDUs as the SIM listed them)
    # makes storing a received message idempotent: one listed again because the box
    # stopped between the commit and the deletion from the SIM is not stored twice.
    db.execute(
        """
        CREATE TABLE sms_messages (
            id INTEGER PRIMARY KEY,
            direction TEXT NOT NULL CHECK (direction IN ('in', 'out')),
            number TEXT NOT NULL,
            text TEXT NOT NULL,
            status TEXT NOT NULL
                CHECK (status IN ('queued', 'sending', 'sent', 'failed', 'received')),
            error TEXT NOT NULL DEFAULT '',
            parts INTEGER NOT NULL DEFAULT 1,
            created_at REAL NOT NULL,
            sent_at REAL,
            created_by TEXT NOT NULL DEFAULT '',
            customer_id INTEGER,
            attempts INTEGER NOT NULL DEFAULT 0,
            next_try_at REAL NOT NULL DEFAULT 0,
            reference INTEGER,
            refs TEXT NOT NULL DEFAULT '',
            sim_key TEXT UNIQUE,
            CHECK ((direction = 'in') = (status = 'received'))
        ) STRICT
        """
    )
    db.execute("CREATE INDEX sms_messages_created ON sms_messages (created_at)")
    db.execute("CREATE INDEX sms_messages_number ON sms_messages (number)")
    db.execute("CREATE INDEX sms_messages_queued ON sms_messages (id) WHERE status = 'queued'")
    db.execute("CREATE INDEX sms_messages_customer ON sms_messages (customer_id)")
    # What the SMS service last said of the modem (the page tells why nothing goes out);
    # ``updated_at`` is refreshed while the engine runs, so a stale row means it does not.
    db.execute(
        """
        CREATE TABLE sms_service (
            id INTEGER PRIMARY KEY NOT NULL CHECK (id = 1),
            state TEXT NOT NULL CHECK (state IN ('off', 'ready', 'error')),
            detail TEXT NOT NULL DEFAULT '',
            updated_at REAL NOT NULL
        ) STRICT
        """
    )


def _reminder_sms(db: Database) -> None:
    # A reminder whose calls reached nobody may go by SMS (an sms_messages row, sent by the
    # SMS service); the last call attempt keeps which message it was.
    db.execute("ALTER TABLE reminder_settings ADD COLUMN sms_after_calls INTEGER NOT NULL"
               " DEFAULT 0 CHECK (sms_after_calls IN (0, 1))")
    db.execute("ALTER TABLE reminder_attempts ADD COLUMN sms_id INTEGER"
               " REFERENCES sms_messages (id)")


def _recording_dates(db: Database) -> None:
    # The engine indexed its recordings without a date, so the recordings page's date
    # search never found them: date them by their call (answered, else started), as
    # cdr.index_recording now does.
    db.execute(
        "UPDATE recordings SET started_at = (SELECT COALESCE(c.answered_at, c.started_at)"
        " FROM calls c WHERE c.call_id = recordings.call_id)"
        " WHERE started_at IS NULL AND call_id IS NOT NULL"
    )


def _engine_alive(db: Database) -> None:
    # When the engine was last known to run (written every few seconds): a start after a
    # crash ends the calls it left open then, not at the restart, hours later perhaps.
    db.execute(
        """
        CREATE TABLE engine_alive (
            id INTEGER PRIMARY KEY NOT NULL CHECK (id = 1),
            at REAL NOT NULL
        ) STRICT
        """
    )


MIGRATIONS: list[Step] = [
    ("0001_calls", _calls),
    ("0002_recordings", _recordings),
    ("0003_insurance", _insurance),
    ("0004_call_ivr_path", _call_ivr_path),
    ("0006_voicemail", _voicemail),
    ("0007_fax", _fax),
    ("0008_web", _web),
    ("0009_acd", _acd),
    ("0010_flow_versions", _flow_versions),
    ("0011_fax_resend", _fax_resend),
    ("0012_acd_survey", _acd_survey),
    ("0013_call_wrapups", _call_wrapups),
    ("0014_acd_transfers", _acd_transfers),
    ("0015_recording_access", _recording_access),
    ("0016_line_ports", _line_ports),
    ("0017_box_settings", _box_settings),
    ("0018_orders_kb", _orders_kb),
    ("0019_acd_listen", _acd_listen),
    ("0020_prompt_phone", _prompt_phone),
    ("0021_customer_peers", _customer_peers),
    ("0022_reminders", _reminders),
    ("0023_sms", _sms),
    ("0024_reminder_sms", _reminder_sms),
    ("0025_recording_dates", _recording_dates),
    ("0026_engine_alive", _engine_alive),
]


def migration_set(steps: Sequence[Step]) -> Migrations:
    """A sqlite-utils migration set holding ``steps`` in order."""
    migrations = Migrations(MIGRATION_SET)
    for name, fn in steps:
        migrations(name=name)(fn)
    return migrations


migrations = migration_set(MIGRATIONS)


def newer_software(applied: Sequence[str], known: Sequence[str]) -> str:
    """'' when every migration ``applied`` to a database is ``known`` here; otherwise the
    words for a database made by newer software, naming the migrations unknown here (the
    store refuses to open it, a backup restore to take it)."""
    here = set(known)
    newer = [name for name in applied if name not in here]
    if not newer:
        return ""
    return f"made by newer software (migrations {', '.join(newer)} are unknown here)"


class NewerSchemaError(sqlite3.DatabaseError):
    """The database holds migrations this software does not know: newer software made it,
    and this older one would run on a schema it does not understand."""


def migrate(db: Database, steps: Sequence[Step] = MIGRATIONS) -> list[str]:
    """Apply the pending ``steps`` to ``db``; return the names applied (none the second time).

    If a step raises, its changes and record are rolled back, the steps before it stay
    applied, and the exception propagates. A database with migrations not among
    ``steps`` (from newer software: the box was downgraded) is refused with
    :class:`NewerSchemaError` and left untouched.
    """
    mset = migrations if steps is MIGRATIONS else migration_set(steps)
    # One IMMEDIATE transaction around the run: when the engine and the web start together
    # on a fresh box, the second waits for the first and then finds nothing pending,
    # instead of both creating the same tables. Inside it, sqlite-utils puts each step and
    # its record in a savepoint of their own.
    db.conn.execute("BEGIN IMMEDIATE")
    try:
        applied = [m.name for m in mset.applied(db)]
        newer = newer_software(applied, [name for name, _ in steps])
        if newer:
            raise NewerSchemaError(
                f"{newer}; update the box's software before using this database")
        before = set(applied)
        mset.apply(db)
    except BaseException:
        # The failed step is already rolled back to its savepoint; keep the ones before it.
        db.commit()
        raise
    after = [m.name for m in mset.applied(db)]
    db.commit()
    return [name for name in after if name not in before]
