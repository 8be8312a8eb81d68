"""Load generator for ``appliance bench engine``: N calls as Asterisk would send them.

Runs in its own process (pinned to its own core, so its CPU is not counted as the
engine's). Each call is a real TCP connection speaking AudioSocket: the UUID first, then one
320-byte slin frame every 20 ms of recorded speech, with a DTMF key as an in-band tone every
few seconds. For each key it notes when the first tone frame was sent and when the first
frame of the engine's answer (the prompt naming that digit) came back: key→prompt latency.
Frames are sent ``lead`` ms before each engine tick, as a DAHDI span clocks them, so the
measurement sees the engine's share. With ``--ivr LANG`` the calls walk the default
insurance IVR instead: the language key, then 5 for the information menu, then 1 and 2 in
turn (company, insurance tips; each key cuts the playing text short and the menu takes
it), and key→prompt is measured to the first frame of the prompt that key leads to. Prints
one JSON object on stdout at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sys
import time
import uuid
from functools import partial
from pathlib import Path
from typing import cast

import numpy as np

from appliance.media.frame import FRAME_BYTES, SAMPLE_RATE
from appliance.media.prompts import PromptLibrary
from appliance.media.tones import dtmf
from appliance.media.wavio import WavFormatError, read_slin
from drivers.asterisk import protocol

TICK = 0.02
KEY_DIGITS = "0123456789"
SPEECH_DIR = Path("/usr/share/asterisk/sounds/en")


def speech_pcm(seconds: float, rng: random.Random) -> bytes:
    """About ``seconds`` of real recorded speech (falls back to synthetic babble)."""
    files = sorted(SPEECH_DIR.glob("*.wav")) if SPEECH_DIR.is_dir() else []
    rng.shuffle(files)
    parts: list[np.ndarray] = []
    total = 0
    for path in files:
        try:
            x = read_slin(path)
        except WavFormatError:
            continue
        parts.append(x)
        total += len(x)
        if total >= seconds * SAMPLE_RATE:
            break
    if not parts:
        t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
        env = (np.sin(2 * np.pi * 3 * t) > 0).astype(float)
        parts = [(3000 * env * np.sin(2 * np.pi * 220 * t)).astype(np.int16)]
    pcm = np.concatenate(parts).astype("<i2").tobytes()
    pcm = pcm[: len(pcm) - len(pcm) % FRAME_BYTES]
    return pcm


# The IVR walk: (key, prompt it leads to); the steps from IVR_LOOP on repeat.
IVR_LANG_KEY = {"zh": "1", "yue": "2", "en": "3"}
IVR_LOOP = 2


def ivr_script(prompts: PromptLibrary, lang: str) -> list[tuple[str, bytes]]:
    steps = [(IVR_LANG_KEY[lang], "main_menu"), ("5", "info_menu"), ("1", "info_company"),
             ("2", "info_knowledge")]
    return [(key, prompts.get(name, lang).frames[0]) for key, name in steps]


def ivr_greeting(prompts: PromptLibrary) -> bytes:
    """The first frame the IVR sends: a caller keys nothing before hearing it."""
    return prompts.get("welcome", "zh").frames[0]


class LoadCall(asyncio.Protocol):
    def __init__(self, index: int) -> None:
        self.index = index
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.waiting = b""  # the first frame of the answer to the last key
        self.step = 0
        self.greeting = b""  # in an IVR walk: no key until this frame is heard
        self.keying = False  # this key's tone frames are being sent
        self.key_sent_at = 0.0
        self.latencies: list[float] = []
        self.missed = 0
        self.closed = False
        self.frames_received = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not subclasses of asyncio's, hence a cast, not isinstance.
        self.transport = cast(asyncio.Transport, transport)
        self.transport.write(protocol.uuid_msg(uuid.uuid4()))

    def data_received(self, data: bytes) -> None:
        now = time.monotonic()
        buf = self.buf
        buf += data
        msg = protocol.AUDIO_MESSAGE_BYTES
        while len(buf) >= 3:
            length = (buf[1] << 8) | buf[2]
            if len(buf) < 3 + length:
                break
            kind = buf[0]
            if kind == protocol.KIND_AUDIO:
                self.frames_received += 1
                if self.greeting and bytes(buf[3 : 3 + length]) == self.greeting:
                    self.greeting = b""
                if (self.waiting and length == msg - 3
                        and bytes(buf[3 : 3 + length]) == self.waiting):
                    self.latencies.append(now - self.key_sent_at)
                    self.waiting = b""
            del buf[: 3 + length]

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True


async def run(args: argparse.Namespace) -> dict[str, object]:
    rng = random.Random(args.seed)
    loop = asyncio.get_running_loop()
    prompts = PromptLibrary(Path(args.prompts)) if args.prompts else PromptLibrary()
    expect = {d: prompts.get(f"digit_{d}").frames[0] for d in KEY_DIGITS}
    script = ivr_script(prompts, args.ivr) if args.ivr else []
    tones = {d: [protocol.audio(f) for f in _frames(dtmf(d, 80, -7.0))] for d in KEY_DIGITS}
    speech = speech_pcm(60.0, rng)
    speech_msgs = [protocol.audio(speech[i : i + FRAME_BYTES])
                   for i in range(0, len(speech), FRAME_BYTES)]
    calls: list[LoadCall] = []
    for i in range(args.channels):
        _, proto = await loop.create_connection(partial(LoadCall, i), args.host, args.port)
        if script:
            proto.greeting = ivr_greeting(prompts)
        calls.append(proto)
    print(json.dumps({"streaming": time.monotonic()}), flush=True)
    n_speech = len(speech_msgs)
    offsets = [rng.randrange(n_speech) for _ in calls]
    key_every = round(args.key_every / TICK)
    key_phase = [rng.randrange(key_every) for _ in calls]
    t0 = args.t0
    k = int((time.monotonic() - t0) / TICK) + 1
    end = time.monotonic() + args.seconds
    measure_from = time.monotonic() + args.warmup
    lateness: list[float] = []
    while True:
        target = t0 + k * TICK - args.lead / 1000
        now = time.monotonic()
        if now >= end or all(c.closed for c in calls):
            break
        if target > now:
            await asyncio.sleep(target - now)
        lateness.append(time.monotonic() - target)
        measuring = time.monotonic() >= measure_from
        for j, call in enumerate(calls):
            tr = call.transport
            if tr is None or call.closed:
                continue
            phase = (k + key_phase[j]) % key_every
            if phase == 0:
                call.keying = not call.greeting
            if phase < 4 and call.keying:
                # The digit is fixed by the key's first tick, so all four tone frames carry
                # the same key even when k // key_every turns over in the middle of the tone.
                if script:
                    digit, answer = script[call.step]
                else:
                    digit = KEY_DIGITS[(j + (k - phase) // key_every) % 10]
                    answer = expect[digit]
                if phase == 0:
                    if call.waiting and measuring:
                        call.missed += 1
                    call.waiting = answer if measuring else b""
                    call.key_sent_at = time.monotonic()
                elif phase == 3 and script:
                    call.step = call.step + 1 if call.step + 1 < len(script) else IVR_LOOP
                tr.write(tones[digit][phase])
            else:
                tr.write(speech_msgs[(offsets[j] + k) % n_speech])
        k += 1
    # The engine hangs the calls up (0x00, then close) when it has measured; wait for that,
    # and only close what is left afterwards.
    deadline = time.monotonic() + 10.0
    while not all(c.closed for c in calls) and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    for call in calls:
        if call.transport is not None and not call.closed:
            call.transport.close()
    lat = np.array([x for c in calls for x in c.latencies]) * 1000
    missed = sum(c.missed for c in calls)
    late_sends = np.array(lateness) * 1000
    return {
        "keys_measured": len(lat),
        "keys_missed": missed,
        "key_to_prompt_p50_ms": round(float(np.percentile(lat, 50)), 2) if len(lat) else None,
        "key_to_prompt_p99_ms": round(float(np.percentile(lat, 99)), 2) if len(lat) else None,
        "load_send_lateness_p99_ms": round(float(np.percentile(late_sends, 99)), 2),
        "frames_received": sum(c.frames_received for c in calls),
    }


def _frames(samples: np.ndarray) -> list[bytes]:
    pcm = samples.astype("<i2").tobytes()
    pcm += bytes(-len(pcm) % FRAME_BYTES)
    return [pcm[i : i + FRAME_BYTES] for i in range(0, len(pcm), FRAME_BYTES)]


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--channels", type=int, required=True)
    p.add_argument("--seconds", type=float, required=True, help="streaming time, warm-up included")
    p.add_argument("--warmup", type=float, default=3.0)
    p.add_argument("--t0", type=float, required=True, help="engine tick start (CLOCK_MONOTONIC)")
    p.add_argument("--lead", type=float, default=4.0, help="ms before each engine tick")
    p.add_argument("--key-every", type=float, default=3.0)
    p.add_argument("--core", type=int, default=-1)
    p.add_argument("--prompts", default="")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--ivr", choices=sorted(IVR_LANG_KEY), default="",
                   help="walk the default insurance IVR in this language")
    args = p.parse_args(argv)
    if args.core >= 0 and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {args.core})
    from appliance.runtime import run_loop

    result = run_loop(lambda: run(args))
    print(json.dumps(result), flush=True)
    sys.exit(0)


if __name__ == "__main__":
    main()
