"""The AMI client against a byte-exact fake Asterisk Manager Interface, the channel map its
VarSet events feed, AudioSocket calls named by it (port, caller, number dialled), and the
dialplan and AMI account the box writes for it."""

from __future__ import annotations

import asyncio
import logging
import re
import time
import uuid

import pytest

from appliance.box import dialplan
from appliance.box.dialplan import CONTEXTS, ENGINE_CONTEXT, extensions_conf, manager_conf
from drivers.asterisk.ami import MAX_BLOCK, AmiClient, AmiError, encode, parse
from drivers.asterisk.audiosocket import AudioSocketDriver
from drivers.asterisk.channels import CALL_VARIABLE, MAX_ENTRIES, ChannelInfo, ChannelMap
from drivers.base import CAUSE_NO_ANSWER, Direction, Line, LineError, LineState
from tests.drivers._fake_ami import FakeAmi, block, fake_ami, var_set
from tests.drivers._fake_asterisk import FakeAsterisk
from tests.drivers.test_audiosocket import call, frame, read_frames, run, serving, until

CALL = uuid.UUID("5d2c0b4e-8f1a-4c3e-9b7d-2a6f1e0c9d31")
FAST = (0.05, 0.3)  # reconnect delays for the tests: quick, then the "refused" wait


def client(ami: FakeAmi, channels: ChannelMap | None = None, secret: str = "s3cret-pass",
           **kw: object) -> AmiClient:
    on_event = channels.on_event if channels is not None else (lambda _m: None)
    return AmiClient("127.0.0.1", ami.port, "appliance", secret, on_event=on_event,
                     reconnect_delays=kw.pop("delays", FAST),  # type: ignore[arg-type]
                     answer_timeout=kw.pop("answer_timeout", 2.0))  # type: ignore[arg-type]


# -- the wire format ----------------------------------------------------------------------
def test_encode_writes_ami_blocks_exactly() -> None:
    assert encode({"Action": "Login", "Username": "appliance", "Secret": "x"}) == (
        b"Action: Login\r\nUsername: appliance\r\nSecret: x\r\n\r\n")
    with pytest.raises(ValueError, match="cannot be sent on one line"):
        encode({"Action": "Originate", "Channel": "DAHDI/g1/1\r\nAction: Logoff"})


def test_parse_keeps_every_field_and_names_a_bad_line() -> None:
    fields = parse(var_set(str(CALL), 3)[:-2])
    assert fields["Event"] == "VarSet" and fields["AccountCode"] == ""
    assert fields["Value"] == f"{CALL}/3" and fields["Channel"] == "DAHDI/3-1"
    assert parse(b"Response: Follows\r\nOutput: a\r\nOutput: b\r\n")["Output"] == "a\nb"
    with pytest.raises(ValueError, match="not a 'Key: Value' line: 'garbage here'"):
        parse(b"Event: X\r\ngarbage here\r\n")


# -- the client ---------------------------------------------------------------------------
def test_logs_in_hands_over_events_and_answers_actions() -> None:
    async def main() -> None:
        async with fake_ami() as ami:
            channels = ChannelMap()
            amic = client(ami, channels)
            await amic.start()
            await asyncio.wait_for(amic.logged_in.wait(), 3)
            assert ami.received[0] == (
                b"Action: Login\r\nActionID: appliance-1\r\nUsername: appliance\r\n"
                b"Secret: s3cret-pass\r\nEvents: on\r\n\r\n")
            ami.send(var_set(str(CALL), 3))
            await until(lambda: len(channels) == 1)
            assert channels.take(str(CALL)) == ChannelInfo("DAHDI/3-1", 3, "13800138000", "")
            pong = await amic.action("Ping")
            assert pong["Ping"] == "Pong" and pong["ActionID"] == "appliance-2"
            with pytest.raises(AmiError, match="Frobnicate: Asterisk refused it: Invalid"):
                await amic.action("Frobnicate", {"Channel": "DAHDI/1-1"})
            await amic.stop()
            with pytest.raises(AmiError, match="not connected"):
                await amic.action("Ping")

    run(main)


def test_a_refused_login_is_said_and_retried_only_after_the_longest_delay(
        caplog: pytest.LogCaptureFixture) -> None:
    async def main() -> None:
        async with fake_ami() as ami:
            amic = client(ami, secret="wrong-secret")
            await amic.start()
            await until(lambda: ami.connections == 1 and "refused" in amic.last_error)
            assert amic.last_error == ("login as 'appliance' refused (Login: Asterisk refused "
                                       "it: Authentication failed)")
            await asyncio.sleep(0.2)  # the quick delay would have tried twice by now
            assert ami.connections == 1 and not amic.logged_in.is_set()
            await until(lambda: ami.connections == 2)
            await amic.stop()

    with caplog.at_level(logging.ERROR, "drivers.asterisk.ami"):
        run(main)
    assert "check the AMI user and secret" in caplog.text


def test_a_peer_that_is_not_ami_is_named_and_the_client_keeps_trying() -> None:
    async def main() -> None:
        async with fake_ami(banner=b"SSH-2.0-OpenSSH_9.2\r\n") as ami:
            amic = client(ami)
            await amic.start()
            await until(lambda: ami.connections >= 2)
            assert amic.last_error == (
                "not Asterisk's AMI: it began with b'SSH-2.0-OpenSSH_9.2\\r\\n'")
            assert not ami.received  # nothing, not even the secret, went to it
            await amic.stop()

    run(main)


def test_an_oversized_message_drops_the_connection_and_the_next_one_works() -> None:
    async def main() -> None:
        async with fake_ami() as ami:
            channels = ChannelMap()
            amic = client(ami, channels)
            await amic.start()
            await asyncio.wait_for(amic.logged_in.wait(), 3)
            ami.send(b"Event: Flood\r\nData: " + b"x" * (MAX_BLOCK + 10))
            await until(lambda: amic.sessions == 2 and amic.logged_in.is_set())
            assert ami.connections == 2
            ami.send(var_set(str(CALL), 7))
            await until(lambda: len(channels) == 1)  # events flow on the new connection

    run(main)


def test_a_malformed_event_is_skipped_and_the_next_one_taken(
        caplog: pytest.LogCaptureFixture) -> None:
    async def main() -> None:
        async with fake_ami() as ami:
            channels = ChannelMap()
            amic = client(ami, channels)
            await amic.start()
            await asyncio.wait_for(amic.logged_in.wait(), 3)
            ami.send(b"Event: VarSet\r\nthis is not a field\r\n\r\n" + var_set(str(CALL), 4))
            await until(lambda: len(channels) == 1)
            assert amic.sessions == 1  # the same connection
            await amic.stop()

    with caplog.at_level(logging.WARNING, "drivers.asterisk.ami"):
        run(main)
    assert "a message skipped: not a 'Key: Value' line: 'this is not a field'" in caplog.text


def test_a_dropped_connection_fails_the_waiting_action_and_comes_back() -> None:
    async def main() -> None:
        async with fake_ami() as ami:
            amic = client(ami)
            await amic.start()
            await asyncio.wait_for(amic.logged_in.wait(), 3)
            ami.answer = False  # Asterisk hangs before answering, then restarts
            waiting = asyncio.create_task(amic.action("Ping"))
            await until(lambda: len(ami.received) == 2)
            ami.drop()
            with pytest.raises(AmiError, match="the AMI connection ended"):
                await waiting
            ami.answer = True
            await until(lambda: amic.sessions == 2 and amic.logged_in.is_set())
            assert (await amic.action("Ping"))["Ping"] == "Pong"
            await amic.stop()

    run(main)


def test_no_asterisk_listening_is_said_plainly() -> None:
    async def main() -> None:
        async with fake_ami() as ami:
            port = ami.port
        amic = AmiClient("127.0.0.1", port, "appliance", "s3cret-pass",
                         on_event=lambda _m: None, reconnect_delays=FAST)
        await amic.start()
        await until(lambda: bool(amic.last_error))
        assert amic.last_error == "connection refused (is Asterisk running, with AMI enabled?)"
        with pytest.raises(AmiError, match=r"not connected .* \(connection refused"):
            await amic.action("Ping")
        await amic.stop()

    run(main)


# -- the channel map ----------------------------------------------------------------------
def test_the_channel_map_reads_the_dialplan_variable_and_forgets_hung_up_channels(
        caplog: pytest.LogCaptureFixture) -> None:
    channels = ChannelMap()
    channels.on_event(parse(var_set(str(CALL), 35, caller="<unknown>", exten="95500",
                                    unique="1.1")))
    assert channels.take(str(CALL)) == ChannelInfo("DAHDI/35-1", 35, "", "95500")  # E1 DNIS
    assert channels.take(str(CALL)) is None  # taken once
    other = uuid.uuid4()
    channels.on_event(parse(var_set(str(other), 2, unique="1.2")))
    channels.on_event({"Event": "Hangup", "Uniqueid": "1.2", "Cause": "16"})
    assert channels.take(str(other)) is None and len(channels) == 0
    with caplog.at_level(logging.WARNING):
        channels.on_event({"Event": "VarSet", "Variable": CALL_VARIABLE, "Value": "nope/3",
                           "Channel": "DAHDI/3-1"})
    assert "APPLIANCE_CALL='nope/3' on DAHDI/3-1 is not <uuid>/<channel>" in caplog.text
    channels.on_event({"Event": "VarSet", "Variable": "OTHER", "Value": f"{CALL}/3"})
    assert len(channels) == 0
    for i in range(MAX_ENTRIES + 5):  # never taken: the oldest go
        channels.on_event({"Event": "VarSet", "Variable": CALL_VARIABLE,
                           "Value": f"{uuid.UUID(int=i + 1)}/1"})
    assert len(channels) == MAX_ENTRIES and channels.take(str(uuid.UUID(int=1))) is None


# -- AudioSocket calls named by the AMI -----------------------------------------------------
def test_a_call_whose_event_came_first_is_offered_with_its_port_and_numbers() -> None:
    async def main() -> None:
        channels = ChannelMap()
        channels.on_event(parse(var_set(str(CALL), 3, caller="13912345678")))
        async with serving(channels) as (driver, engine, fakes):
            fake = await call(driver, fakes, call_id=CALL)
            line = await engine.line(str(CALL))
            assert (line.port, line.caller, line.callee) == (3, "13912345678", "")
            await fake.stream([frame(1)])
            assert await read_frames(line, 1) == [frame(1)]

    run(main)


def test_a_call_waits_for_its_event_then_is_offered_with_the_frames_that_came() -> None:
    async def main() -> None:
        channels = ChannelMap()
        async with serving(channels) as (driver, engine, fakes):
            fake = await call(driver, fakes, call_id=CALL)
            await fake.stream([frame(1), frame(2)])
            await asyncio.sleep(0.1)
            assert engine.lines == []  # not offered yet: its channel is not known
            channels.on_event(parse(var_set(str(CALL), 12, exten="8001")))
            line = await engine.line(str(CALL))
            assert (line.port, line.callee) == (12, "8001")
            assert await read_frames(line, 2) == [frame(1), frame(2)]

    run(main)


def test_a_call_whose_event_never_comes_is_offered_without_it(
        caplog: pytest.LogCaptureFixture) -> None:
    async def main() -> None:
        async with serving(ChannelMap()) as (driver, engine, fakes):
            await call(driver, fakes, call_id=CALL)
            started = time.monotonic()
            line = await engine.line(str(CALL))
            assert 0.4 <= time.monotonic() - started < 2.0
            assert (line.port, line.caller, line.callee) == (None, "", "")

    with caplog.at_level(logging.WARNING, "drivers.asterisk"):
        run(main)
    assert "no AMI event named its channel within 0.5 s" in caplog.text


def test_a_caller_who_hangs_up_while_the_event_is_awaited_is_never_offered() -> None:
    async def main() -> None:
        async with serving(ChannelMap()) as (driver, engine, fakes):
            fake = await call(driver, fakes, call_id=CALL)
            await fake.hang_up()
            await until(lambda: not driver.lines)
            await asyncio.sleep(0.6)
            assert engine.lines == []

    run(main)


# -- what the box writes for Asterisk -------------------------------------------------------
_EXTEN = re.compile(r"exten => (s|_X|_X\.),1,(\w+)\((.*)\)")
_SAME = re.compile(r" same => n,(\w+)\((.*)\)")
_APPS = {"Goto", "Set", "Answer", "AudioSocket", "Hangup"}


def _balanced(text: str) -> bool:
    depth = 0
    for ch in text.replace("${", "{"):
        depth += {"(": 1, "{": 1, ")": -1, "}": -1}.get(ch, 0)
        if depth < 0:
            return False
    return depth == 0


def test_the_dialplan_hands_every_port_to_the_engine_and_names_the_channel() -> None:
    text = extensions_conf("127.0.0.1:9092")
    contexts: dict[str, list[tuple[str, str]]] = {}
    current = ""
    for line in text.splitlines():
        if not line or line.startswith(";"):
            continue
        if m := re.fullmatch(r"\[([a-z-]+)\]", line):
            current = m.group(1)
            contexts[current] = []
        elif current == "general":
            assert re.fullmatch(r"[a-z]+=(yes|no)", line), line
        elif m := _EXTEN.fullmatch(line) or _SAME.fullmatch(line):
            app, args = m.groups()[-2:]
            assert app in _APPS and _balanced(args), line
            contexts[current].append((app, args))
        else:
            raise AssertionError(f"not a dialplan line: {line!r}")
    assert set(contexts) == {"general", *CONTEXTS, ENGINE_CONTEXT}
    for context in CONTEXTS:  # chan_dahdi.conf's contexts lead to the engine's
        assert contexts[context] == [("Goto", f"{ENGINE_CONTEXT},${{EXTEN}},1")] * 3
    body = [app for app, _ in contexts[ENGINE_CONTEXT]]
    assert body == ["Set", "Answer", "AudioSocket", "Hangup"] * 3
    assert dialplan.CALL_VARIABLE == CALL_VARIABLE  # what the AMI client looks for
    sets = {args for app, args in contexts[ENGINE_CONTEXT] if app == "Set"}
    assert sets == {"APPLIANCE_CALL=${UUID()}/${CHANNEL(dahdi_channel)}"}
    assert {args for app, args in contexts[ENGINE_CONTEXT] if app == "AudioSocket"} == {
        "${CUT(APPLIANCE_CALL,/,1)},127.0.0.1:9092"}
    with pytest.raises(ValueError, match="expected HOST:PORT"):
        extensions_conf("127.0.0.1:9092),Hangup(")


def test_the_ami_account_is_local_and_carries_the_events_the_engine_reads() -> None:
    text = manager_conf("appliance", "s3cret-pass")
    assert "bindaddr=127.0.0.1" in text and "[appliance]\nsecret=s3cret-pass\n" in text
    assert "read=call,dialplan,dtmf,reporting" in text  # Hangup: call; VarSet: dialplan
    with pytest.raises(ValueError, match="secret: 8 to 64 printable"):
        manager_conf("appliance", "short")
    with pytest.raises(ValueError, match="secret: 8 to 64 printable"):
        manager_conf("appliance", "has a space in it")
    with pytest.raises(ValueError, match="username: lower-case"):
        manager_conf("Admin]\n[x", "s3cret-pass")


# -- outbound calls through the AMI ------------------------------------------------------------
def client_of(driver: AudioSocketDriver, ami: FakeAmi) -> AmiClient:
    """An AMI client whose events go to ``driver`` (not started)."""
    return AmiClient("127.0.0.1", ami.port, "appliance", "s3cret-pass",
                     on_event=driver.on_ami_event, reconnect_delays=FAST)


async def logged_in_for(driver: AudioSocketDriver, ami: FakeAmi) -> AmiClient:
    """``driver``'s AMI client, started and logged in to ``ami``."""
    amic = driver.ami = client_of(driver, ami)
    await amic.start()
    await asyncio.wait_for(amic.logged_in.wait(), 3)
    return amic


def test_an_outbound_call_is_originated_into_audiosocket_and_its_audio_flows() -> None:
    async def main() -> None:
        async with fake_ami() as ami, serving(ChannelMap()) as (driver, engine, fakes):
            amic = await logged_in_for(driver, ami)
            line = await driver.originate("13800138000", caller="95500")
            assert line.state is LineState.DIALING and line.direction is Direction.OUTBOUND
            assert ami.received[-1] == (
                f"Action: Originate\r\nActionID: originate-{line.id}\r\n"
                f"Channel: DAHDI/g1/13800138000\r\nApplication: AudioSocket\r\n"
                f"Data: {line.id},127.0.0.1:{driver.port}\r\nAsync: true\r\n"
                f"ChannelId: {line.id}\r\nTimeout: 60000\r\nCallerID: 95500\r\n\r\n").encode()
            line.write_frame(frame(9))  # dialling: nowhere to go yet, and no error
            ami.send(block("Event: Newchannel", "Channel: DAHDI/2-1", f"Uniqueid: {line.id}"))
            await until(lambda: line.port == 2)
            assert [(p.port, p.state.value, p.direction) for p in driver.port_states()] == [
                ("2", "ringing", "out")]
            # Asterisk has the channel up and runs AudioSocket() with our UUID.
            fake = await call(driver, fakes, call_id=uuid.UUID(line.id))
            await fake.stream([frame(1), frame(2)])
            assert await read_frames(line, 2) == [frame(1), frame(2)]
            line.write_frame(frame(3))
            await fake.wait_bytes(323)
            assert bytes(fake.received) == b"\x10\x01\x40" + frame(3)
            assert engine.lines == []  # the engine placed it: nothing is offered
            line.hangup()
            await fake.wait_eof()
            await amic.stop()

    run(main)


@pytest.mark.parametrize(("event", "cause"), [
    (("Event: OriginateResponse", "Response: Failure", "Reason: 5"), "busy"),
    (("Event: OriginateResponse", "Response: Failure", "Reason: 3"), "no-answer"),
    (("Event: OriginateResponse", "Response: Failure", "Reason: 0"), "congestion"),
    (("Event: Hangup", "Cause: 17", "Cause-txt: User busy"), "busy"),
])
def test_an_outbound_call_that_fails_before_it_connects_ends_with_the_cause(
        event: tuple[str, ...], cause: str) -> None:
    async def main() -> None:
        async with fake_ami() as ami, serving() as (driver, _engine, _fakes):
            amic = await logged_in_for(driver, ami)
            line = await driver.originate("13800138000")
            # OriginateResponse carries the Originate's ActionID; Hangup the channel's id.
            ids = (f"ActionID: originate-{line.id}", "Uniqueid: <null>") \
                if "OriginateResponse" in event[0] else (f"Uniqueid: {line.id}",)
            ami.send(block(*event, *ids))
            await until(lambda: line.ended)
            assert line.end_cause == cause and not driver.lines
            await amic.stop()

    run(main)


def test_hanging_up_while_dialling_hangs_the_channel_up_and_refuses_its_late_audio() -> None:
    async def main() -> None:
        async with fake_ami() as ami, serving() as (driver, engine, fakes):
            amic = await logged_in_for(driver, ami)
            line = await driver.originate("13800138000")
            ami.send(block("Event: Newchannel", "Channel: DAHDI/4-1", f"Uniqueid: {line.id}"))
            await until(lambda: line.channel == "DAHDI/4-1")
            line.hangup(CAUSE_NO_ANSWER)  # the engine's ring timeout
            await until(lambda: any(b.startswith(b"Action: Hangup") for b in ami.received))
            assert ami.received[-1].endswith(b"Channel: DAHDI/4-1\r\nCause: 16\r\n\r\n")
            fake = await call(driver, fakes, call_id=uuid.UUID(line.id))  # too late
            await fake.wait_eof()
            assert bytes(fake.received) == b"\x00\x00\x00" and engine.lines == []
            await amic.stop()

    run(main)


def hangups(ami: FakeAmi) -> list[bytes]:
    return [b for b in ami.received if b.startswith(b"Action: Hangup")]


def test_an_originate_the_ami_never_answers_is_hung_up_when_its_channel_shows() -> None:
    # The AMI was slow (or its connection dropped) after the Originate went out: the dial
    # is reported failed, but Asterisk placed it. Its channel is hung up when it shows,
    # and if the callee answered first, its AudioSocket connection is refused: never a
    # new inbound call where the callee would hear the welcome.
    async def main() -> None:
        async with fake_ami() as ami, serving() as (driver, engine, fakes):
            amic = driver.ami = AmiClient("127.0.0.1", ami.port, "appliance", "s3cret-pass",
                                          on_event=driver.on_ami_event,
                                          reconnect_delays=FAST, answer_timeout=0.2)
            await amic.start()
            await asyncio.wait_for(amic.logged_in.wait(), 3)
            ami.answer = False
            with pytest.raises(LineError, match="13800138000: Asterisk did not place the call"):
                await driver.originate("13800138000")
            sent = [b for b in ami.received if b.startswith(b"Action: Originate")]
            line_id = re.search(rb"ChannelId: ([-0-9a-f]+)", sent[-1])[1].decode()  # type: ignore[index]
            ami.send(block("Event: Newchannel", "Channel: DAHDI/3-1", f"Uniqueid: {line_id}"))
            await until(lambda: bool(hangups(ami)))
            assert hangups(ami)[-1].endswith(b"Channel: DAHDI/3-1\r\nCause: 16\r\n\r\n")
            fake = await call(driver, fakes, call_id=uuid.UUID(line_id))
            await fake.wait_eof()
            assert bytes(fake.received) == b"\x00\x00\x00" and engine.lines == []
            await amic.stop()

    run(main)


def test_a_call_hung_up_before_asterisk_names_its_channel_is_hung_up_when_it_does() -> None:
    async def main() -> None:
        async with fake_ami() as ami, serving() as (driver, _engine, _fakes):
            amic = await logged_in_for(driver, ami)
            line = await driver.originate("13800138000")
            line.hangup(CAUSE_NO_ANSWER)  # before any Newchannel: no channel to hang up yet
            assert not hangups(ami)
            ami.send(block("Event: Newchannel", "Channel: DAHDI/4-1", "ChannelState: 0",
                           f"Uniqueid: {line.id}", f"Linkedid: {line.id}"))
            await until(lambda: bool(hangups(ami)))
            assert hangups(ami)[-1].endswith(b"Channel: DAHDI/4-1\r\nCause: 16\r\n\r\n")
            await amic.stop()

    run(main)


def test_a_connection_after_the_hangup_event_of_a_dialled_call_is_refused() -> None:
    # The AMI's Hangup and the AudioSocket connection race on two sockets: the callee
    # answered and hung up at once. The call has ended as failed; its connection is not
    # a new inbound call with a CDR row of its own.
    async def main() -> None:
        async with fake_ami() as ami, serving() as (driver, engine, fakes):
            amic = await logged_in_for(driver, ami)
            line = await driver.originate("13800138000")
            ami.send(block("Event: Hangup", f"Uniqueid: {line.id}", "Cause: 16",
                           "Cause-txt: Normal Clearing"))
            await until(lambda: line.ended)
            fake = await call(driver, fakes, call_id=uuid.UUID(line.id))
            await fake.wait_eof()
            assert bytes(fake.received) == b"\x00\x00\x00" and engine.lines == []
            await amic.stop()

    run(main)


def test_stopping_the_driver_hangs_up_the_calls_still_dialled() -> None:
    async def main() -> None:
        async with fake_ami() as ami:
            driver = AudioSocketDriver(port=0)
            await driver.start(lambda line: None)
            amic = await logged_in_for(driver, ami)
            line = await driver.originate("13800138000")
            ami.send(block("Event: Newchannel", "Channel: DAHDI/4-1", f"Uniqueid: {line.id}"))
            await until(lambda: line.channel == "DAHDI/4-1")
            await driver.stop()
            assert line.end_cause == "shutdown"
            # Sent before stop() returned, not cancelled by it.
            assert [h.endswith(b"Channel: DAHDI/4-1\r\nCause: 16\r\n\r\n")
                    for h in hangups(ami)] == [True]
            await amic.stop()

    run(main)


def test_an_originate_asterisk_refuses_is_a_line_error_naming_why() -> None:
    async def main() -> None:
        async with fake_ami() as ami, serving() as (driver, _engine, _fakes):
            ami.refuse["Originate"] = "Originate failed"
            amic = await logged_in_for(driver, ami)
            with pytest.raises(LineError, match="10086: Asterisk did not place the call: "
                                                "Originate: Asterisk refused it: Originate "
                                                "failed"):
                await driver.originate("10086")
            with pytest.raises(LineError, match="is not a number to dial"):
                await driver.originate("10086\r\nAction: Logoff")
            assert not driver.lines
            await amic.stop()

    run(main)


def test_the_lines_show_every_dahdi_channel_idle_in_call_or_in_alarm(
        caplog: pytest.LogCaptureFixture) -> None:
    async def main() -> None:
        async with fake_ami() as ami:
            ami.dahdi = {1: "No Alarm", 2: "Red Alarm", 3: "No Alarm"}
            driver = AudioSocketDriver(port=0, channels=ChannelMap())
            amic = driver.ami = client_of(driver, ami)
            offered: list[Line] = []
            await driver.start(offered.append)
            await amic.start()
            await asyncio.wait_for(amic.logged_in.wait(), 3)
            driver.reserve_inbound(frozenset({"3"}))
            ami.send(var_set(str(CALL), 1))
            await until(lambda: len(driver.port_states()) == 3)
            fake = await FakeAsterisk.connect(driver.port, CALL)
            await until(lambda: bool(offered))
            assert [(s.port, s.state.value, s.call, s.reserved_inbound, s.detail)
                    for s in driver.port_states()] == [
                ("1", "in-call", str(CALL), False, ""),
                ("2", "alarm", "", False, "Red Alarm"),
                ("3", "idle", "", True, ""),
            ]
            await fake.close()
            await driver.stop()
            await amic.stop()

        async with fake_ami() as ami:  # an Asterisk without chan_dahdi loaded
            ami.refuse["DAHDIShowChannels"] = "Invalid/unknown command"
            driver = AudioSocketDriver(port=0)
            amic = driver.ami = client_of(driver, ami)
            await driver.start(lambda _line: None)
            await amic.start()
            await until(lambda: any(b.startswith(b"Action: DAHDIShowChannels")
                                    for b in ami.received))
            await asyncio.sleep(0.1)
            assert driver.port_states() == []
            await driver.stop()
            await amic.stop()

    with caplog.at_level(logging.WARNING, "drivers.asterisk"):
        run(main)
    assert ("AMI: the DAHDI channels are not known: DAHDIShowChannels: Asterisk refused it: "
            "Invalid/unknown command") in caplog.text
