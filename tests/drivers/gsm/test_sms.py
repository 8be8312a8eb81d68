"""SMS in PDU mode against the simulated modem on a real pseudo-terminal: the PDUs are
checked against known-good ones (gsmmodem's own test vectors, the classic SMS-DELIVER
example of 3GPP TS 23.040 tutorials), Chinese text goes as UCS-2 and a long one as
concatenated parts under one reference; the inbox decodes sender, text and time, joins
parts, names a garbled PDU by its index and still returns the others; +CMS ERROR codes
and noise come back as errors that say what happened."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta, timezone

import pytest

from drivers.gsm.at import AtSession, Busy, Garbage, open_port, probe
from drivers.gsm.simulated import SimulatedModem
from drivers.gsm.sms import (
    SmsError,
    SmsSession,
    TextError,
    count_parts,
    encode,
    pdu_hex,
    tpdu_length,
)

HELLO_PDU = "0001000B917228001011F100000CC8329BFD065DDF72363904"  # gsmmodem's test vector
# "It is easy to read text messages via AT commands." from +85291234567, 2007-04-12
# 23:25:42 +08:00, through SMSC +85290000000: the textbook SMS-DELIVER.
DELIVER_PDU = ("07915892000000F0040B915892214365F700007040213252242331493A283D0795C3F33C88FE"
               "06C9CB6132885EC6D341EDF27C1E3E97E7207B3A0C0A5241E377BB1D7693E72E")
CHINESE_100 = ("尊敬的客户您好，您的保单本月二十八日到期应缴保费，请及时缴费以免保单失效。"
               "如已缴费请忽略本短信。详情请拨打客服热线九五五零零咨询，感谢您对本公司的支持与"
               "信任，祝您生活愉快！本公司将继续为您提供优质的保险服务。")[:100]


@pytest.fixture
def modem() -> Iterator[SimulatedModem]:
    m = SimulatedModem()
    yield m
    m.close()


@pytest.fixture
def session(modem: SimulatedModem) -> Iterator[SmsSession]:
    port = open_port(modem.path, 115200)
    s = SmsSession(AtSession(port, modem.path, timeout=1.0), send_timeout=2.0)
    s.setup()
    yield s
    port.close()


def test_pdus_match_known_good_ones() -> None:
    assert pdu_hex(encode("+27820001111", "Hello World!")[0]) == HELLO_PDU
    # 世界您好！ in UCS-2 (gsmmodem's vector, without its SMSC and validity period)
    assert pdu_hex(encode("+123456789", "世界您好！")[0]) == \
        "000100099121436587F900080A4E16754C60A8597DFF01"
    assert tpdu_length(encode("+27820001111", "Hello World!")[0]) == len(HELLO_PDU) // 2 - 1
    # The SMSC the admin set goes in front; AT+CMGS's length still counts the TPDU only.
    with_smsc = encode("+123456789", "世界您好！", smsc="+44000000000")[0]
    assert pdu_hex(with_smsc) == "07914400000000F00100099121436587F900080A4E16754C60A8597DFF01"
    assert tpdu_length(with_smsc) == len(pdu_hex(with_smsc)) // 2 - 8


def test_a_session_with_an_smsc_sends_what_the_modem_accepts(modem: SimulatedModem,
                                                             session: SmsSession) -> None:
    session.smsc = "+8613800100500"
    assert session.send("13800138000", "您好") == [1]
    assert modem.sent[0]["smsc"] == "+8613800100500"


def test_a_chinese_text_is_sent_as_ucs2_with_its_reference(modem: SimulatedModem,
                                                           session: SmsSession) -> None:
    refs = session.send("13800138000", "您的保单已生效。")
    assert refs == [1]
    assert modem.commands[:3] == ["AT", "AT+CMGF=0", "AT+CNMI=0,1"]  # PDU mode, stored
    assert modem.commands[-1] == f"AT+CMGS={len(modem.sent[0]['pdu']) // 2 - 1}"
    sent = modem.sent[0]
    assert (sent["number"], sent["text"], sent["type"]) == ("13800138000", "您的保单已生效。",
                                                            "SMS-SUBMIT")
    assert sent["pdu"][12:14] == "08"  # DCS: UCS-2


def test_a_hundred_chinese_characters_go_as_two_parts_of_one_message(
        modem: SimulatedModem, session: SmsSession) -> None:
    assert len(CHINESE_100) == 100 and count_parts(CHINESE_100) == 2
    refs = session.send("+8613800138000", CHINESE_100)
    assert refs == [1, 2]
    heads = [next(ie for ie in s["udh"]) for s in modem.sent]
    assert {h.reference for h in heads} == {session._reference}
    assert [(h.number, h.parts) for h in heads] == [(1, 2), (2, 2)]
    assert "".join(s["text"] for s in modem.sent) == CHINESE_100
    assert [len(s["text"]) for s in modem.sent] == [67, 33]
    # The next long message has a reference of its own.
    session.send("+8613800138000", CHINESE_100)
    assert modem.sent[2]["udh"][0].reference != heads[0].reference


def test_a_network_refusal_says_what_the_code_means(modem: SimulatedModem,
                                                    session: SmsSession) -> None:
    modem.on_submit = lambda pdu: b"+CMS ERROR: 38"
    with pytest.raises(SmsError, match=r"\+CMS ERROR 38: network out of order") as err:
        session.send("13800138000", "hello")
    assert (err.value.code, err.value.temporary) == (38, True)
    modem.on_submit = lambda pdu: b"+CMS ERROR: 28"
    with pytest.raises(SmsError, match=r"28: unidentified subscriber") as err:
        session.send("13800138000", "hello")
    assert not err.value.temporary
    modem.on_submit = None
    assert session.send("13800138000", "hello") == [1]  # the session still works


def test_noise_instead_of_a_reference_is_garbage(modem: SimulatedModem,
                                                 session: SmsSession) -> None:
    modem.on_submit = lambda pdu: b"\xf8\x80\x00\xfe"
    with pytest.raises(Garbage, match="the reply is not text"):
        session.send("13800138000", "hello")
    modem.on_submit = lambda pdu: b"OK"
    with pytest.raises(Garbage, match=r"OK without \+CMGS"):
        session.send("13800138000", "hello")


def test_texts_and_numbers_that_cannot_go() -> None:
    with pytest.raises(TextError, match="empty"):
        encode("13800138000", "  ")
    with pytest.raises(TextError, match=r"character 3 .* emoji"):
        encode("13800138000", "你好😀")
    with pytest.raises(TextError, match="more than 8"):
        encode("13800138000", "中" * 600)
    with pytest.raises(TextError, match="'138-abc' is not a phone number"):
        encode("138-abc", "hi")


def test_the_inbox_decodes_joins_and_names_a_garbled_pdu(modem: SimulatedModem,
                                                         session: SmsSession) -> None:
    modem.store(DELIVER_PDU)
    when = datetime(2026, 11, 26, 9, 30, tzinfo=timezone(timedelta(hours=8)))
    modem.deliver("13900139000", CHINESE_100, when=when)  # indexes 2 and 3
    modem.store("07915892000000F0040B9158922143")  # cut short: index 4
    modem.store(pdu_hex(encode("13800138000", "draft")[0]), stat=2)  # a stored outgoing
    modem.deliver("13700137000", "只有第一部分" * 20, reference=99)
    del modem.sim[7]  # its second part has not arrived
    inbox = session.inbox()
    first, second = inbox.messages
    assert (first.indexes, first.number, first.text) == (
        (1,), "+85291234567", "It is easy to read text messages via AT commands.")
    assert first.sent_at is not None and first.sent_at.isoformat() == \
        "2007-04-12T23:25:42+08:00"
    assert (second.indexes, second.number, second.text) == ((2, 3), "13900139000",
                                                            CHINESE_100)
    assert second.sent_at == when
    assert [(b.index, b.reason.split(":")[0]) for b in inbox.bad] == [(4, "message 4")]
    assert "the PDU does not decode" in inbox.bad[0].reason
    assert [p.indexes for p in inbox.partial] == [(6,)]


def test_delete_and_a_missing_index(modem: SimulatedModem, session: SmsSession) -> None:
    modem.deliver("13900139000", "hi")
    session.delete(1)
    assert modem.sim == {} and modem.deleted == [1]
    with pytest.raises(SmsError, match=r"AT\+CMGD=1: \+CMS ERROR 321: invalid memory index"):
        session.delete(1)


def test_the_modem_test_says_busy_while_the_service_holds_the_port(
        modem: SimulatedModem, session: SmsSession) -> None:
    with pytest.raises(Busy, match="in use by another program"):
        probe(modem.path, 115200, timeout=1.0)
