"""A real call's recording on the recordings page: a simulated caller walks the default
insurance IVR (policy enquiry: policy number and ID digits keyed as DTMF tones), asks for
a person from the fax offer, an agent's seat answers and both talk; the engine writes the
stereo WAV and the CDR. The page then finds the call by the policy number keyed, shows
the queue and the agent, and plays the engine's file byte for byte, logging the play."""

from __future__ import annotations

import datetime as dt
import threading
import wave
from pathlib import Path
from typing import Any

from appliance.acd import Acd, QueueConfig, Strategy
from appliance.calls.engine import Engine
from appliance.ivr.flow import load_flow
from appliance.ivr.insurance_lookups import InsuranceLookups
from appliance.ivr.interpreter import make_flow_handler
from appliance.media.wavio import read_slin
from appliance.store.db import Store
from drivers.sim import CallerBot, SimExchange
from tests.acd.helpers import audio, flush, run_calls, seat_bot, seats, until, voice
from tests.rig import InlineExecutor
from tests.web.test_recordings import access_rows, fetch

FLOW = Path(__file__).parents[2] / "appliance" / "ivr" / "default_flow.json"
NOW = dt.datetime(2026, 11, 25, 12, 0)  # a Wednesday at noon: the office is open


def real_call(store: Store, data_dir: Path, caller: str, agent: str = "agent"
              ) -> dict[str, Any]:
    """One whole call on the engine: ``caller`` keys the first policy of the book and its
    holder's ID digits in the default IVR, asks for a person, and talks with ``agent`` at
    seat s1. Returns the call's CDR row, the policy keyed and what each side said."""
    (policy,) = store.query("SELECT p.number, c.id_last4 FROM policies p JOIN customers c"
                            " ON c.id = p.holder_id ORDER BY p.number LIMIT 1")
    acd = Acd(seats(1), [QueueConfig("service", Strategy.LONGEST_IDLE)], store=store,
              executor=InlineExecutor())
    lookups = InsuranceLookups(store, now=lambda: NOW, executor=InlineExecutor())
    flow = make_flow_handler(load_flow(FLOW), lookups.functions(), clock_now=lambda: NOW,
                             messages_dir=data_dir / "messages", store=store,
                             executor=InlineExecutor(), acd=acd)
    caller_says, agent_says = voice("agent-pass.wav"), voice("auth-thankyou.wav", seed=2)

    async def scenario(engine: Engine, ex: SimExchange) -> None:
        s1 = seat_bot(ex, "8001")
        acd.login("s1", agent)
        bot = CallerBot(ex, caller)
        await bot.dial("95500")
        await bot.listen(0.5)
        await bot.press("1")  # 普通话
        await bot.listen(0.5)
        await bot.press("1")  # policy enquiry
        await bot.listen(0.5)
        await bot.press(policy["number"] + "#")
        await bot.listen(0.5)
        await bot.press(policy["id_last4"].replace("X", "*") + "#")
        assert await bot.wait_for(audio("zh", "fax_offer")[:3200], timeout=90)
        await bot.press("0")  # a person
        assert await until(engine, lambda: s1.connected, 30)
        await bot.send(caller_says)
        await s1.send(agent_says)
        await bot.wait(0.5)
        await bot.hangup()
        assert await s1.wait_hangup(5) is not None

    # On a thread of its own: Playwright's sync API may keep an event loop on this one.
    failed: list[BaseException] = []

    def run() -> None:
        try:
            run_calls(data_dir, store, acd, flow, scenario, timeout=120)
        except BaseException as exc:  # handed to the test's thread
            failed.append(exc)

    worker = threading.Thread(target=run, name="engine")
    worker.start()
    worker.join(150)
    if failed:
        raise failed[0]
    flush(store)
    (call,) = store.query("SELECT call_id, recording, policy_number FROM calls"
                          " WHERE caller = ? AND direction = 'in'", [caller])
    return dict(call, policy=policy["number"], caller_says=caller_says,
                agent_says=agent_says)


def test_a_real_call_is_found_by_the_policy_keyed_and_played(
        store: Store, data_dir: Path, as_role: Any) -> None:
    call = real_call(store, data_dir, "13912340000")
    policy = {"number": call["policy"]}
    caller_says, agent_says = call["caller_says"], call["agent_says"]
    assert call["policy_number"] == policy["number"]
    wav = Path(call["recording"])
    assert wav.is_relative_to(data_dir / "recordings")
    with wave.open(str(wav)) as w:
        assert (w.getnchannels(), w.getframerate()) == (2, 8000)
    stereo = read_slin(wav, channels=2).reshape(-1, 2)
    assert caller_says in stereo[:, 0].tobytes() and agent_says in stereo[:, 1].tobytes()

    sup, _ = as_role("supervisor")
    html = sup.get("/recordings/", query_string={"policy": policy["number"]}
                   ).get_data(as_text=True)
    assert f'data-call="{call["call_id"]}"' in html
    assert "13912340000" in html and "service" in html and "agent (Seat 1)" in html
    # The seat's own leg is recorded too, but the customer's call holds both sides.
    assert len(store.query("SELECT 1 FROM recordings")) == 2
    assert sup.get("/recordings/").get_data(as_text=True).count('data-call="') == 1
    (rec,) = store.query("SELECT rowid AS id FROM recordings WHERE call_id = ?",
                         [call["call_id"]])
    res = fetch(sup, f"/recordings/{rec['id']}/play.wav", headers={"Range": "bytes=0-"})
    assert res.status_code == 206 and res.data == wav.read_bytes()
    # The agent who answered finds it among their own calls; the number masked.
    agent, _ = as_role("agent")
    html = agent.get("/recordings/").get_data(as_text=True)
    assert f'data-call="{call["call_id"]}"' in html and "139****0000" in html
    assert [(r["username"], r["kind"]) for r in access_rows(store)] == [("supervisor", "play")]
