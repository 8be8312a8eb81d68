"""What a reminder call says, as prompt and segment names in the holder's language.

The greeting, the policy number digit by digit, the product (when the box has a recording
of its name), the premium due and its due date spoken with the IVR's own grammar
(:mod:`appliance.ivr.speech`), a warning when the date has passed, and then the key menu
(1 confirm, 2 an agent, 9 again), which the dialer plays on its own so that 9 can repeat
the message without the menu twice.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Final

from appliance.ivr.speech import speak_date, speak_digits, speak_money
from appliance.reminders.selection import Due

GREETING: Final = "rem_greeting"
MENU: Final = "rem_menu"
CONFIRMED: Final = "rem_confirmed"
NO_AGENT: Final = "rem_no_agent"
GOODBYE: Final = "rem_goodbye"
TO_AGENT: Final = "to_operator"
INVALID: Final = "invalid_key"


def message(due: Due, today: dt.date, has_prompt: Callable[[str, str], bool]) -> list[str]:
    """The message for ``due`` in its language; ``has_prompt(name, lang)`` says whether the
    box has a recording (a product the demo's prompts do not name is not said)."""
    lang = due.language
    out = [GREETING]
    if due.policy_number.isdigit():
        out += ["rem_policy", *speak_digits(lang, due.policy_number)]
    product = f"product_{due.product_code}"
    if has_prompt(product, lang):
        out += ["policy_product", product]
    out += ["rem_amount", *speak_money(lang, due.amount_fen), "rem_due",
            *speak_date(lang, due.due_date)]
    if due.due_date < today:
        out.append("rem_overdue")
    return out


def sms_text(due: Due, today: dt.date) -> str:
    """The reminder as an SMS in the holder's language (Cantonese readers get traditional
    characters), for a holder the calls did not reach."""
    amount = f"{due.amount_fen // 100}.{due.amount_fen % 100:02d}"
    overdue = due.due_date < today
    d = due.due_date
    if due.language == "en":
        return (f"Premium reminder: the premium of CNY {amount} on your policy "
                f"{due.policy_number} {'was' if overdue else 'is'} due on {d.isoformat()}. "
                "Please pay in time to keep your cover. Questions: call our service line.")
    if due.language == "yue":
        return (f"【續期繳費提示】尊貴的客戶，您的保單{due.policy_number}保費{amount}元"
                f"{'已於' if overdue else '將於'}{d.year}年{d.month}月{d.day}日到期，"
                "請及時繳費，以免影響保障。如有查詢，請致電本公司客戶服務熱線。")
    return (f"【续期缴费提醒】尊敬的客户，您的保单{due.policy_number}保费{amount}元"
            f"{'已于' if overdue else '将于'}{d.year}年{d.month}月{d.day}日到期，"
            "请及时缴费，以免影响保障。如有疑问，请致电本公司客服热线。")


__all__ = ["CONFIRMED", "GOODBYE", "GREETING", "INVALID", "MENU", "NO_AGENT", "TO_AGENT",
           "message", "sms_text"]
