"""Prompts recorded over the phone (issue 4, item 4): staff phone PINs (:mod:`.pins`), the
stable prompt numbers and the one way a prompt's recording is replaced, shared with the web
upload (:mod:`.files`), and the recording line's call flow (:mod:`.phone`,
``PromptRecording`` on ``DEFAULT_NUMBER``). The package itself exports only what the web
may use: the call flow is imported from :mod:`appliance.promptrec.phone` by the engine's
side, so the web never loads the engine's call objects."""

from appliance.promptrec.files import (
    LANGUAGES,
    MAX_PROMPT_SECONDS,
    Replaced,
    prompt_by_number,
    prompt_numbers,
    replace_prompt,
)
from appliance.promptrec.pins import (
    DEFAULT_NUMBER,
    PinCheck,
    PinError,
    Staff,
    check_pin,
    pin_state,
    set_pin,
)

__all__ = ["DEFAULT_NUMBER", "LANGUAGES", "MAX_PROMPT_SECONDS", "PinCheck", "PinError",
           "Replaced", "Staff", "check_pin", "pin_state", "prompt_by_number", "prompt_numbers",
           "replace_prompt", "set_pin"]
