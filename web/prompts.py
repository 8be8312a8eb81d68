"""Voice prompts (语音提示): every prompt of each language with its number and text, to
listen to, and to replace with a new recording (admin only); an admin's phone PIN for
recording prompts by phone (``appliance/promptrec``).

A replacement must be what the engine plays: an 8 kHz 16-bit mono PCM WAV of at most
:data:`MAX_PROMPT_SECONDS`. It is written beside the old one and renamed into place, so the
engine never reads half a file; the old recording is kept under the data folder
(``prompt_history/``), and the audit log names both versions by their SHA-256. A recording
made by phone is saved by the same function. The engine's prompt library notices the
replaced file, so the next call hears it without a restart.
"""

from __future__ import annotations

import io
import json
import time
import wave
from pathlib import Path
from typing import Any

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    g,
    redirect,
    render_template,
    request,
    send_file,
    url_for,
)
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from sqlite_utils import Database

from appliance.media.convert import ConversionError, to_prompt_wav
from appliance.media.frame import SAMPLE_RATE
from appliance.media.wavio import WavFormatError, parse_wav
from appliance.promptrec import files, pins
from web import audit, permissions
from web.db import store

bp = Blueprint("prompts", __name__, url_prefix="/prompts")

MAX_PROMPT_SECONDS = files.MAX_PROMPT_SECONDS
MAX_UPLOAD_BYTES = 20 << 20  # a minute of even a high-rate stereo WAV fits
LANGUAGES = files.LANGUAGES


def _root() -> Path:
    return Path(current_app.config["PROMPTS_DIR"])


def prompt_texts(lang: str) -> dict[str, str]:
    """Each prompt's text in ``lang`` from the manifest (a prompt said in another voice is
    ``{"text", "voice"}`` there)."""
    try:
        data: dict[str, Any] = json.loads((_root() / "manifest.json").read_text("utf-8"))
    except FileNotFoundError:
        return {}
    entry = data.get(lang, {}).get("prompts", {})
    return {k: (v["text"] if isinstance(v, dict) else v) for k, v in entry.items()}


def _path(lang: str, name: str) -> Path:
    """The prompt's file; 404 unless it is a prompt of that language (no path tricks: the
    name must be one the folder lists)."""
    if lang not in LANGUAGES:
        abort(404)
    folder = _root() / lang
    names = {p.stem for p in folder.glob("*.wav")} if folder.is_dir() else set()
    if name not in names:
        abort(404)
    return folder / f"{name}.wav"


def language_name(code: str) -> str:
    return {"zh": _("Mandarin"), "yue": _("Cantonese"), "en": _("English")}.get(code, code)


@bp.route("/", endpoint="list")
def prompt_list() -> str:
    lang = request.args.get("lang", "zh")
    if lang not in LANGUAGES:
        lang = "zh"
    q = request.args.get("q", "").strip()[:64]
    texts = prompt_texts(lang)
    numbers = files.prompt_numbers(store(), _root())
    rows = []
    for wav in sorted((_root() / lang).glob("*.wav")):
        text = texts.get(wav.stem, "")
        number = numbers.get(wav.stem)
        if q and q.lower() not in wav.stem.lower() and q not in text and q != str(number):
            continue
        try:
            with wave.open(str(wav), "rb") as w:
                seconds = w.getnframes() / (w.getframerate() or SAMPLE_RATE)
        except (wave.Error, EOFError):
            seconds = None
        rows.append({"name": wav.stem, "text": text, "seconds": seconds, "number": number})
    user = g.get("user")
    phone = None
    if user is not None and permissions.allowed("prompts.phone_pin", user.role):
        phone = {"number": pins.DEFAULT_NUMBER, "staff_no": user.id,
                 "state": pins.pin_state(store(), user.id)}
    return render_template("prompts/list.html", rows=rows, lang=lang, q=q,
                           languages=LANGUAGES, language_name=language_name,
                           max_seconds=MAX_PROMPT_SECONDS, phone=phone,
                           pin_digits=pins.PIN_DIGITS)


@bp.route("/<lang>/<name>.wav")
def audio(lang: str, name: str) -> ResponseReturnValue:
    # Read whole (a prompt is tens of kilobytes): no open file left to whoever consumes
    # the response.
    return send_file(io.BytesIO(_path(lang, name).read_bytes()), mimetype="audio/wav",
                     max_age=0)


def check_wav(data: bytes) -> str | None:
    """Why ``data`` is not a prompt the engine can play, or None: read as the engine reads
    it (:func:`appliance.media.wavio.parse_wav`)."""
    try:
        wav = parse_wav(data)
    except WavFormatError:
        return _("The file is not a PCM WAV recording.")
    if (wav.rate, wav.bits, wav.channels) != (SAMPLE_RATE, 16, 1):
        return _("The recording is %(rate)d Hz, %(bits)d-bit, %(channels)d channel(s); "
                 "prompts must be 8000 Hz, 16-bit, mono.", rate=wav.rate, bits=wav.bits,
                 channels=wav.channels)
    frames = len(wav.data) // 2
    if frames == 0 or (wav.declared is not None and len(wav.data) < wav.declared):
        return _("The recording is empty or cut short.")
    if frames / wav.rate > MAX_PROMPT_SECONDS:
        return _("The recording is longer than %(n)d seconds.", n=MAX_PROMPT_SECONDS)
    return None


@bp.route("/<lang>/<name>", methods=["POST"])
def replace(lang: str, name: str) -> ResponseReturnValue:
    _path(lang, name)  # 404 unless it is a prompt of that language
    upload = request.files.get("file")
    data = upload.read(MAX_UPLOAD_BYTES + 1) if upload else b""
    problem = None
    if not data:
        problem = _("Choose a file to import.")
    elif len(data) > MAX_UPLOAD_BYTES:
        problem = _("The file is too large: at most %(mb)d MB.", mb=MAX_UPLOAD_BYTES >> 20)
    elif check_wav(data) is not None:
        # Not already a prompt: a WAV at another rate, an MP3 or an M4A is converted.
        try:
            data = to_prompt_wav(data, (upload.filename or "") if upload else "")
        except ConversionError as exc:
            problem = _("The recording cannot be used: %(why)s", why=str(exc))
    if problem is None:
        problem = check_wav(data)
    if problem:
        flash(problem, "error")
        return redirect(url_for("prompts.list", lang=lang, q=name)), 303
    done = files.replace_prompt(_root(), Path(current_app.config["DATA_DIR"]), lang, name,
                                data)
    audit.log("prompt.replace", f"{lang}/{name}", old_sha256=done.old_sha256,
              new_sha256=done.new_sha256, kept=str(done.kept), via="web")
    flash(_("Prompt %(name)s replaced; the next call hears it.", name=name))
    return redirect(url_for("prompts.list", lang=lang, q=name))


@bp.route("/phone-pin", methods=["POST"])
def phone_pin() -> ResponseReturnValue:
    """Set the logged-in admin's own phone PIN for recording prompts by phone (a new PIN
    also clears a lock). The PIN itself is never logged."""
    pin = request.form.get("pin", "").strip()
    again = request.form.get("pin2", "").strip()
    lo, hi = pins.PIN_DIGITS
    problem = None
    if pins.valid_pin(pin) is not None:
        problem = _("The phone PIN must be %(lo)d to %(hi)d digits (0-9), nothing else.",
                    lo=lo, hi=hi)
    elif pin != again:
        problem = _("The two PINs you typed differ.")
    if problem:
        flash(problem, "error")
        return redirect(url_for("prompts.list")), 303
    user = g.user
    was = pins.pin_state(store(), user.id)
    entry = audit.audit_row("phone_pin.set", user.username, before=was)
    now = time.time()

    def save(db: Database) -> None:
        pins.set_pin(db, user.id, pin, now)
        audit.insert(db, entry)

    store().write(save)
    flash(_("Your phone PIN is set. Call %(number)s, key your staff number %(staff)d and "
            "this PIN.", number=pins.DEFAULT_NUMBER, staff=user.id))
    return redirect(url_for("prompts.list"))
