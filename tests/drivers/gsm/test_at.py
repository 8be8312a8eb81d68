"""The modem test against a real pseudo-terminal: a modem that answers like a GSM stick
gives its SIM state and signal; no SIM, a missing device, a modem answering noise and one
answering nothing each get their own error naming the device and the command."""

from __future__ import annotations

import time

import pytest

from drivers.gsm.at import Garbage, NoAnswer, NoDevice, probe
from tests.drivers.gsm.fake_modem import fake_modem, garbage, gsm_modem, silent


def test_a_gsm_modem_reports_sim_ready_signal_and_text_mode() -> None:
    with fake_modem(gsm_modem()) as modem:
        status = probe(modem.path, 115200, timeout=1.0)
    assert modem.commands == ["AT", "AT+CPIN?", "AT+CSQ", "AT+CMGF=1"]
    assert (status.sim, status.sim_ready, status.rssi, status.ber, status.text_mode) == (
        "READY", True, 21, None, True)
    assert status.dbm == -71
    assert [r.final for r in status.replies] == ["OK"] * 4
    assert status.replies[2].lines == ("+CSQ: 21,99",)  # the echo left out


def test_without_echo_and_without_a_sim() -> None:
    modem_replies = {"AT+CPIN?": b"+CME ERROR: 10", "AT+CSQ": b"+CSQ: 99,99\r\n\r\nOK",
                     "AT+CMGF=1": b"ERROR"}
    with fake_modem(gsm_modem(modem_replies, echo=False)) as modem:
        status = probe(modem.path, 9600, timeout=1.0)
    assert (status.sim, status.sim_ready, status.rssi, status.dbm, status.text_mode) == (
        "SIM not inserted", False, None, None, False)


def test_a_pin_locked_sim_is_said_as_the_modem_says_it() -> None:
    with fake_modem(gsm_modem({"AT+CPIN?": b"+CPIN: SIM PIN\r\n\r\nOK"})) as modem:
        assert probe(modem.path, 115200, timeout=1.0).sim == "SIM PIN"


def test_no_such_device() -> None:
    with pytest.raises(NoDevice, match=r"/dev/ttyUSB97: no such device"):
        probe("/dev/ttyUSB97", 115200)


def test_a_modem_answering_noise_is_garbage_with_a_hint() -> None:
    with fake_modem(garbage) as modem, pytest.raises(Garbage) as err:
        probe(modem.path, 115200, timeout=1.0)
    assert str(err.value).startswith(f"{modem.path}: AT: the reply is not text (b'\\xf8")
    assert "check the baud rate" in str(err.value)


def test_text_that_is_not_an_at_reply_is_garbage_too() -> None:
    with fake_modem(lambda c: b"\r\nhello from a router\r\n") as modem, \
            pytest.raises(Garbage, match=r"AT: no final OK or ERROR within 0\.5 s, got"):
        probe(modem.path, 115200, timeout=0.5)


def test_a_bad_signal_line_is_garbage() -> None:
    with fake_modem(gsm_modem({"AT+CSQ": b"+CSQ: 57,0\r\n\r\nOK"})) as modem, \
            pytest.raises(Garbage, match=r"AT\+CSQ: signal 57 is out of range"):
        probe(modem.path, 115200, timeout=1.0)


def test_a_silent_modem_is_no_answer_after_the_timeout() -> None:
    with fake_modem(silent) as modem:
        start = time.monotonic()
        with pytest.raises(NoAnswer, match=r"AT: no answer within 0\.5 s"):
            probe(modem.path, 115200, timeout=0.5)
        assert 0.5 <= time.monotonic() - start < 2.0
        assert modem.commands == ["AT"]
