"""Runs a validated :class:`~appliance.ivr.flow.Flow` on a call, node by node.

Each node type is one coroutine that performs its actions on the :class:`Call` and returns
the id of the next node (None ends the flow). Everything that decides the caller's path (a
key, a timeout, a lookup's result, the language chosen, the hours branch taken) is appended
to the call's *path log*, a list of JSON-ready dicts that :func:`run_flow` returns and an
``on_step`` callback sees as it grows, so the CDR can store how the caller went through the
menu. Lookups and the wall clock enter as parameters: a test passes plain functions and a
fixed ``clock_now``. Given the ACD (``acd``), a ``transfer`` node puts the caller into its
queue until they reach a seat, leave a message or book a callback; given the fax desk
(``fax``), a ``fax`` node sends its document; without them (a flow tried out on its own)
these nodes log what they would do and carry on to ``next``. With a
store, a ``voicemail`` node leaves the message in its box through
:func:`appliance.voicemail.leave_message` (envelope, trimmed copy, triage); without one
(a flow tried out on its own) it only records the message to a file.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import inspect
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from concurrent.futures import Executor
from pathlib import Path
from typing import Any, Final, Protocol

from appliance.calls.call import MASKED_KEY, Call, CallEnded, FlowFn
from appliance.ivr.flow import DEFAULT_PROMPTS, Flow
from appliance.ivr.hours import from_node, load_hours
from appliance.ivr.speech import say
from appliance.media.prompts import Prompt
from appliance.media.wavio import WavFormatError, read_slin
from appliance.store import cdr
from appliance.store.db import Store
from appliance.voicemail import box_for, leave_message, salesperson_messages

log = logging.getLogger(__name__)

Step = dict[str, Any]
OnStep = Callable[[Call, Step], None]
Lookup = Callable[..., Any]

DEFAULT_MENU_TIMEOUT: Final = 5.0
DEFAULT_MENU_RETRIES: Final = 2
DEFAULT_COLLECT_TIMEOUT: Final = 8.0
DEFAULT_INTER_TIMEOUT: Final = 4.0
DEFAULT_RECORD_SECONDS: Final = 120.0
#: node visits per call; far more than any caller makes, so only a flow loop reaches it
MAX_STEPS: Final = 2000
OPERATOR_KEY: Final = "0"


class FaxOutcome(Protocol):
    @property
    def ok(self) -> bool: ...
    @property
    def pages(self) -> int: ...
    @property
    def bit_rate(self) -> int: ...
    @property
    def reason(self) -> str: ...


class FaxSender(Protocol):
    """What a ``fax`` node needs (:class:`appliance.fax.desk.FaxDesk`)."""

    async def here(self, call: Call, kind: str, params: dict[str, Any],
                   announce: Awaitable[Any] | None = None) -> FaxOutcome: ...

    def later(self, call: Call, number: str, kind: str, params: dict[str, Any]) -> bool: ...


class QueueTransfer(Protocol):
    """What a ``transfer`` node needs of the ACD (:class:`appliance.acd.Acd`)."""

    def has_queue(self, name: str) -> bool: ...

    async def transfer(self, call: Call, queue: str, *, priority: int = 0,
                       variables: Mapping[str, str] | None = None,
                       ivr_path: Sequence[Any] = ()) -> str: ...


class ConferenceRooms(Protocol):
    """What a ``conference`` node needs (:class:`appliance.conference.Conferences`)."""

    async def join(self, call: Call) -> str: ...


class _Run:
    """The state of one call going through a flow."""

    def __init__(self, call: Call, flow: Flow, lookups: Mapping[str, Lookup],
                 clock_now: Callable[[], dt.datetime], messages_dir: Path | None,
                 on_step: OnStep | None, store: Store | None = None,
                 executor: Executor | None = None, fax: FaxSender | None = None,
                 acd: QueueTransfer | None = None,
                 conference: ConferenceRooms | None = None) -> None:
        self.call = call
        self.acd = acd
        self.conference = conference
        self.store = store
        self.fax = fax
        self.executor = executor
        self.flow = flow
        self.lookups = lookups
        self.clock_now = clock_now
        self.messages_dir = messages_dir
        self.on_step = on_step
        self.path: list[Step] = []
        self.secret_variables: set[str] = set()  # keyed in secret: masked in the log
        self.variables: dict[str, str] = {"caller": call.caller, "callee": call.callee,
                                          "call_id": call.id, "language": call.language}

    def step(self, node_id: str, node: Mapping[str, Any], **details: Any) -> None:
        entry: Step = {"node": node_id, "type": node["type"], "tick": self.call.engine.tick_no,
                       **details}
        self.path.append(entry)
        if self.on_step is not None:
            self.on_step(self.call, entry)

    async def run(self) -> list[Step]:
        call = self.call
        try:
            await call.answer()
            node_id: str | None = self.flow.start
            steps = 0
            while node_id is not None:
                steps += 1
                if steps > MAX_STEPS:
                    log.error("call %s: flow %s looped past %d nodes; hanging up", call.id,
                              self.flow.name, MAX_STEPS)
                    self.path.append({"event": "loop", "node": node_id})
                    await call.hangup("flow-loop")
                    break
                node = self.flow.node(node_id)
                handler = getattr(self, "_" + node["type"])
                node_id = await handler(node_id, node)
        except CallEnded as exc:
            # The caller hanging up is how most calls end: the path so far is the result.
            self.path.append({"event": "ended", "cause": exc.cause})
        return self.path

    # ------------------------------------------------------------------ node types
    async def _play(self, node_id: str, node: Mapping[str, Any]) -> str:
        playlist: list[Prompt | str] = list(node["prompts"])
        recording = self.variables.get(node["recording"], "") if "recording" in node else ""
        if recording:
            # A file a lookup found (a salesperson's name): read off the loop, and a file
            # that is gone or unreadable is skipped rather than ending the call.
            try:
                samples = await asyncio.get_running_loop().run_in_executor(
                    self.executor, read_slin, Path(recording))
                playlist.append(Prompt.from_samples(Path(recording).stem, samples,
                                                    self.call.language))
            except (OSError, WavFormatError) as exc:
                log.warning("call %s: recording %s not played: %s", self.call.id, recording,
                            exc)
        key = await self.call.play(*playlist, interruptible=node.get("interruptible", True))
        self.step(node_id, node, **({"interrupted_by": key} if key else {}))
        return str(node["next"])

    async def _menu(self, node_id: str, node: Mapping[str, Any]) -> str:
        call = self.call
        options: Mapping[str, str] = node["options"]
        retries = node.get("retries", DEFAULT_MENU_RETRIES)
        timeout = float(node.get("timeout", DEFAULT_MENU_TIMEOUT))
        failures = 0
        prompt: list[str] = list(node["prompt"])
        while True:
            # No terminator: '#' and '*' are menu keys like any other.
            got = await call.collect(1, terminator="", first_timeout=timeout,
                                     inter_timeout=timeout, prompt=prompt)
            key = got.digits
            if key in options:
                self.step(node_id, node, key=key)
                return options[key]
            if key == OPERATOR_KEY and self.flow.operator is not None:
                self.step(node_id, node, key=key, operator=True)
                return self.flow.operator
            failures += 1
            # One count for invalid keys and silences: the caller gets retries+1 tries in
            # all, and the last failure's kind picks where they go.
            outcome = "invalid" if key else "timeout"
            self.step(node_id, node, key=key, outcome=outcome, attempt=failures)
            if failures > retries:
                return str(node["on_invalid" if key else "on_timeout"])
            extra = node.get("invalid_prompt" if key else "timeout_prompt", [])
            prompt = [*extra, *node["prompt"]]

    async def _collect(self, node_id: str, node: Mapping[str, Any]) -> str:
        got = await self.call.collect(
            node["max_digits"], terminator=node.get("terminator", "#"),
            first_timeout=float(node.get("timeout", DEFAULT_COLLECT_TIMEOUT)),
            inter_timeout=float(node.get("inter_timeout", DEFAULT_INTER_TIMEOUT)),
            prompt=list(node["prompt"]), secret=bool(node.get("secret", False)))
        secret = bool(node.get("secret", False))
        # A secret (PIN, ID digits) is used, never written down: the path log, like the
        # CDR, shows one x per key.
        shown = MASKED_KEY * len(got.digits) if secret else got.digits
        self.step(node_id, node, digits=shown, end=got.end.value, into=node["into"])
        if not got.digits:
            return str(node["on_timeout"])
        if secret:
            self.secret_variables.add(node["into"])
        self.variables[node["into"]] = got.digits
        return str(node["next"])

    async def _language(self, node_id: str, node: Mapping[str, Any]) -> str:
        call = self.call
        got = await call.collect(1, terminator="",
                                 first_timeout=float(node.get("timeout", DEFAULT_MENU_TIMEOUT)),
                                 prompt=list(node["prompt"]))
        chosen = node["options"].get(got.digits)
        if chosen is not None:
            call.language = self.variables["language"] = chosen
        # No choice or a wrong key keeps the language the call has: the caller still gets
        # through, in the box's default language.
        self.step(node_id, node, key=got.digits, language=call.language)
        return str(node["next"])

    async def _hours(self, node_id: str, node: Mapping[str, Any]) -> str:
        now = self.clock_now()
        # The box's hours as the admin saved them, read now so an edit reaches the next
        # caller; a box that never saved any keeps the hours written in the flow.
        saved = load_hours(self.store) if self.store is not None else None
        hours = saved if saved is not None else from_node(node)
        is_open, special = hours.state(now)
        details: dict[str, Any] = {"source": "box" if saved is not None else "flow"}
        if special is not None:
            details[special.kind] = True
            if special.name:
                details["day"] = special.name
        self.step(node_id, node, now=now.isoformat(timespec="minutes"), open=is_open,
                  **details)
        return str(node["open" if is_open else "closed"])

    async def _lookup(self, node_id: str, node: Mapping[str, Any]) -> str:
        names = list(node.get("args", []))
        args = [self.variables.get(a, "") for a in names]
        shown_args = [MASKED_KEY * len(v) if a in self.secret_variables else v
                      for a, v in zip(names, args, strict=True)]
        try:
            result = self.lookups[node["function"]](*args)
            if inspect.isawaitable(result):
                result = await result
        except CallEnded:
            raise
        except Exception as exc:
            # A failing back end sends the caller down the not-found branch (usually an
            # agent) rather than dropping the call.
            log.exception("call %s: lookup %s failed", self.call.id, node["function"])
            self.step(node_id, node, function=node["function"], args=shown_args,
                      error=str(exc))
            return str(node["on_not_found"])
        found = result is not None and result is not False
        logged = _jsonable(result)
        self.step(node_id, node, function=node["function"], args=shown_args, result=logged,
                  found=found)
        if not found:
            return str(node["on_not_found"])
        into = node["into"]
        if isinstance(result, Mapping):
            # {"premium": "1234.50"} is read as the variable "<into>.premium".
            for key, value in result.items():
                self.variables[f"{into}.{key}"] = str(value)
            self.variables[into] = "1"
        else:
            self.variables[into] = str(result)
        return str(node["on_found"])

    async def _speak(self, node_id: str, node: Mapping[str, Any]) -> str:
        call = self.call
        value = (self.variables.get(node["variable"], "") if "variable" in node
                 else str(node["value"]))
        try:
            segments = say(call.language, node["kind"], value)
        except ValueError as exc:
            # A value the grammar refuses (a bad lookup result) is skipped, not fatal.
            self.step(node_id, node, value=value, error=str(exc))
            return str(node["next"])
        key = await call.play(*segments, interruptible=node.get("interruptible", True))
        self.step(node_id, node, value=value, segments=segments,
                  **({"interrupted_by": key} if key else {}))
        return str(node["next"])

    async def _take_message(self, node_id: str, node: Mapping[str, Any], prompt: list[str],
                            path: Path) -> str:
        call = self.call
        await call.play(*prompt, interruptible=False)
        await call.beep()
        message = await call.record_message(
            path, max_seconds=float(node.get("max_seconds", DEFAULT_RECORD_SECONDS)))
        saved = str(message.path) if message.path is not None else ""
        self.step(node_id, node, recording=saved, seconds=round(message.seconds, 2),
                  end=message.end.value)
        return saved

    def _messages(self) -> Path:
        if self.messages_dir is None:
            raise RuntimeError(f"flow {self.flow.name} records, but no messages_dir was given")
        return self.messages_dir

    async def _record(self, node_id: str, node: Mapping[str, Any]) -> str:
        path = self._messages() / f"{self.call.id}.{node_id}.wav"
        self.variables[node["into"]] = await self._take_message(node_id, node,
                                                                list(node["prompt"]), path)
        return str(node["next"])

    async def _voicemail(self, node_id: str, node: Mapping[str, Any]) -> str:
        if self.store is not None:
            await self._leave_message(node_id, node, self.store)
            return str(node["next"])
        path = self._messages() / "voicemail" / node["box"] / f"{self.call.id}.wav"
        prompt = node.get("prompt", DEFAULT_PROMPTS["voicemail"]["prompt"])
        await self._take_message(node_id, node, list(prompt), path)
        return str(node["next"])

    async def _leave_message(self, node_id: str, node: Mapping[str, Any], store: Store) -> None:
        call = self.call
        box = await asyncio.get_running_loop().run_in_executor(self.executor, box_for, store,
                                                                node["box"])
        if node.get("prompt"):
            # The node's own words (e.g. why no one answers now) come before the box's
            # greeting and the tone.
            await call.play(*node["prompt"])
        policy = self.variables.get(node["policy"], "") if "policy" in node else ""
        message = await leave_message(
            call, box, call.language, store, ivr_path=list(self.path),
            policy_number=policy or None,
            max_seconds=float(node.get("max_seconds", DEFAULT_RECORD_SECONDS)),
            executor=self.executor)
        self.step(node_id, node, box=node["box"], message=message.id,
                  recording=str(message.raw_path), seconds=round(message.seconds or 0.0, 2),
                  end=message.end_reason, empty=message.empty)

    async def _inbox(self, node_id: str, node: Mapping[str, Any]) -> str:
        # The voicemail forwarded to a salesperson, played and marked heard. The flow puts
        # this node only after the PIN check, so the code is the caller's own.
        if self.store is None:
            raise RuntimeError(f"flow {self.flow.name} plays voicemail, but no store was given")
        code = self.variables.get(node["salesperson"], "")
        heard = await salesperson_messages(self.call, code, self.call.language, self.store,
                                           executor=self.executor)
        self.step(node_id, node, salesperson=code, heard=heard)
        return str(node["next"])

    async def _transfer(self, node_id: str, node: Mapping[str, Any]) -> str:
        if self.acd is None:
            # No ACD (a flow tried out on its own): tell the caller and move on.
            self.step(node_id, node, queue=node["queue"], transferred=False)
            await self.call.play(*node["prompt"], interruptible=False)
            return str(node["next"])
        await self.call.play(*node["prompt"], interruptible=False)
        # The ACD raises the priority from what the call did (a claim just reported).
        outcome = await self.acd.transfer(self.call, node["queue"],
                                          priority=int(node.get("priority", 0)),
                                          variables=self.variables, ivr_path=list(self.path))
        self.step(node_id, node, queue=node["queue"], transferred=True, outcome=outcome)
        return str(node["next"])

    async def _conference(self, node_id: str, node: Mapping[str, Any]) -> str:
        prompt = list(node.get("prompt", []))
        if prompt:
            await self.call.play(*prompt, interruptible=False)
        if self.conference is None:
            # No rooms on this box (a flow tried out on its own): carry on.
            self.step(node_id, node, joined=False)
            return str(node["next"])
        outcome = await self.conference.join(self.call)
        self.step(node_id, node, joined=True, outcome=outcome)
        return str(node["next"])

    async def _fax(self, node_id: str, node: Mapping[str, Any]) -> str:
        call, kind = self.call, node["document"]
        params = {name: self.variables.get(var, "") for name, var in node.get("params", {}).items()}
        failed = str(node.get("on_failed", node["next"]))
        prompt = list(node.get("prompt", []))
        if self.fax is None:
            # No fax desk (a flow tried out on its own): say what would happen, carry on.
            self.step(node_id, node, document=kind, sent=False)
            if prompt:
                await call.play(*prompt, interruptible=False)
            return str(node["next"])
        if "to" in node:
            number = self.variables.get(node["to"], "")
            queued = self.fax.later(call, number, kind, params)
            self.step(node_id, node, document=kind, to=number, queued=queued)
            if not queued:
                return failed
            if prompt:
                await call.play(*prompt, interruptible=False)
            return str(node["next"])
        # On this call: the prompt tells the caller to press Start while the page renders.
        announce = call.play(*prompt, interruptible=False) if prompt else None
        result = await self.fax.here(call, kind, params, announce)
        self.step(node_id, node, document=kind, sent=result.ok, pages=result.pages,
                  bit_rate=result.bit_rate, reason=result.reason)
        return str(node["next"]) if result.ok else failed

    async def _goto(self, node_id: str, node: Mapping[str, Any]) -> str:
        return str(node["target"])

    async def _hangup(self, node_id: str, node: Mapping[str, Any]) -> None:
        self.step(node_id, node)
        if node.get("prompt"):
            await self.call.play(*node["prompt"], interruptible=False)
        await self.call.hangup()


def _jsonable(value: Any) -> Any:
    """A lookup result as the CDR can store it."""
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return str(value)


def _local_now() -> dt.datetime:
    return dt.datetime.now()


async def run_flow(
    call: Call,
    flow: Flow,
    lookups: Mapping[str, Lookup],
    *,
    clock_now: Callable[[], dt.datetime] = _local_now,
    messages_dir: Path | None = None,
    on_step: OnStep | None = None,
    store: Store | None = None,
    executor: Executor | None = None,
    fax: FaxSender | None = None,
    acd: QueueTransfer | None = None,
    conference: ConferenceRooms | None = None,
) -> list[Step]:
    """Run ``flow`` on ``call`` until a hangup node or the caller hangs up; returns the path
    log (also fed entry by entry to ``on_step``). ``store`` is where voicemail goes;
    ``executor`` runs its blocking store work (default: the loop's thread pool)."""
    return await _Run(call, flow, lookups, clock_now, messages_dir, on_step, store,
                      executor, fax, acd, conference).run()


#: the variables the flows key a policy number into: a policy enquiry and a claim report
POLICY_VARIABLES: Final = ("pol_no", "cl_no")


def keyed_policy(path: Sequence[Step]) -> str | None:
    """The policy number the caller keyed last on this path, if any (for the CDR, where the
    recordings page finds calls by it)."""
    for step in reversed(path):
        digits = str(step.get("digits") or "")
        if (step.get("type") == "collect" and step.get("into") in POLICY_VARIABLES
                and digits.isdigit()):
            return digits
    return None


def make_flow_handler(
    flow: Flow,
    lookups: Mapping[str, Lookup],
    *,
    clock_now: Callable[[], dt.datetime] = _local_now,
    messages_dir: Path | None = None,
    on_step: OnStep | None = None,
    on_done: Callable[[Call, list[Step]], None] | None = None,
    store: Store | None = None,
    executor: Executor | None = None,
    fax: FaxSender | None = None,
    acd: QueueTransfer | None = None,
    conference: ConferenceRooms | None = None,
) -> FlowFn:
    """The engine's flow function for ``flow`` (its path is kept with the CDR row when a
    ``store`` is given; ``transfer`` nodes queue the caller when the ``acd`` is given).
    Refuses at once (ValueError) a flow that calls a lookup not supplied, records with
    nowhere to put messages or transfers to a queue the ACD lacks, rather than on the
    first caller who reaches that node."""
    missing = sorted(flow.functions() - set(lookups))
    if missing:
        raise ValueError(f"flow {flow.name!r} calls lookups that were not supplied: "
                         f"{', '.join(missing)} (supplied: {', '.join(sorted(lookups))})")
    if messages_dir is None and (flow.has("record")
                                 or (flow.has("voicemail") and store is None)):
        raise ValueError(f"flow {flow.name!r} records messages: give messages_dir")
    if store is None and flow.has("inbox"):
        raise ValueError(f"flow {flow.name!r} plays salesperson voicemail: give the store")
    if acd is not None:
        queues = sorted({n["queue"] for n in flow.nodes.values() if n.get("type") == "transfer"})
        unknown = [q for q in queues if not acd.has_queue(q)]
        if unknown:
            raise ValueError(f"flow {flow.name!r} transfers to queues the ACD does not have: "
                             f"{', '.join(unknown)}")

    async def flow_handler(call: Call) -> None:
        path = await run_flow(call, flow, lookups, clock_now=clock_now,
                              messages_dir=messages_dir, on_step=on_step, store=store,
                              executor=executor, fax=fax, acd=acd, conference=conference)
        if store is not None:
            # on the writer thread, not waited for
            cdr.cdr_ivr_path(store, call.id, path, policy_number=keyed_policy(path))
        if on_done is not None:
            on_done(call, path)

    return flow_handler


__all__ = ["MAX_STEPS", "POLICY_VARIABLES", "QueueTransfer", "Step", "keyed_policy",
           "make_flow_handler", "run_flow"]
