"""The ``appliance`` command: run the engine or the demo, check audio files, benchmark.

Commands whose output other tools read (``detect``, ``bench``) print their answer as the
last line of stdout: the digit string, the call-progress outcome, or a JSON object.
"""

from __future__ import annotations

import asyncio
import errno
import json
import logging
import math
import os
import socket
import sqlite3
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from appliance.runtime import DataFolderInUse

if TYPE_CHECKING:  # the commands import what they run lazily: `appliance say` starts fast
    from appliance.calls.engine import Engine
    from appliance.reminders.dialer import ReminderDialer
    from drivers.asterisk.ami import AmiClient

DEFAULT_DATA = Path(os.environ.get("APPLIANCE_DATA", "var"))
#: a TCP port; 0 asks the system for any free one (or, for --web-port, no web admin)
PORT = click.IntRange(0, 65535)


def _answer(*lines: str) -> None:
    """A command's answer on stdout: a stdout that cannot take it (a full disk) is one
    line of error and exit 1, not a traceback (click handles only a closed pipe)."""
    try:
        for line in lines:
            click.echo(line)
        sys.stdout.flush()
    except BrokenPipeError:
        raise  # click's own quiet exit
    except OSError as exc:
        raise click.ClickException(f"cannot write the answer: {exc.strerror or exc}") from None


class FiniteRange(click.FloatRange):
    """A FloatRange that also refuses nan and inf (nan passes every comparison a range
    makes: a bench ran forever, or printed a NaN that is not JSON)."""

    def convert(self, value: Any, param: click.Parameter | None,
                ctx: click.Context | None) -> Any:
        number = super().convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number.", param, ctx)
        return number


class DataFolder(click.Path):
    """--data: a folder path, never empty (an unset variable in a unit file would put the
    database and the recordings in whatever folder the command started in)."""

    def __init__(self) -> None:
        super().__init__(path_type=Path)

    def convert(self, value: Any, param: click.Parameter | None,
                ctx: click.Context | None) -> Any:
        if isinstance(value, str) and not value.strip():
            self.fail("is empty: give the folder for the database and the recordings.",
                      param, ctx)
        return super().convert(value, param, ctx)


@click.group()
@click.option("-v", "--verbose", is_flag=True, help="Debug logging.")
def main(verbose: bool) -> None:
    """Call-centre appliance for insurance branch offices."""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


@main.command()
@click.option("--data", type=DataFolder(), default=DEFAULT_DATA, show_default=True,
              help="Folder for the database, recordings and messages.")
@click.option("--port", default=9092, show_default=True, type=PORT,
              help="AudioSocket port on 127.0.0.1 (0: any free port).")
@click.option("--every", default=8.0, show_default=True, type=FiniteRange(min=0.1),
              help="Seconds between new callers.")
@click.option("--concurrent", default=3, show_default=True, type=click.IntRange(min=0),
              help="Most callers at once (0: no simulated callers).")
@click.option("--flow", "flow_name", type=click.Choice(["insurance", "demo"]),
              default="insurance", show_default=True,
              help="The insurance IVR on the demo book, or the foundation's small demo flow.")
@click.option("--web-port", default=8080, show_default=True, type=PORT,
              help="Port of the web admin on 127.0.0.1 (0: no web admin).")
@click.option("--control-port", default=9093, show_default=True, type=PORT,
              help="Port of the engine's control API on 127.0.0.1 (0: any free port).")
def run(data: Path, port: int, every: float, concurrent: int, flow_name: str,
        web_port: int, control_port: int) -> None:
    """The appliance on its embedded default: simulated exchange, IVR, demo data, callers,
    and the web admin beside the engine."""
    from appliance.demo.run import run_demo
    from appliance.runtime import run_loop

    ports = [("--port", port), ("--web-port", web_port), ("--control-port", control_port)]
    for i, (name, number) in enumerate(ports):
        for other, same in ports[i + 1:]:
            if number and number == same:
                # The second service would fail to listen, the web admin only after five
                # tries half a minute later, leaving the box without its admin page.
                raise click.UsageError(f"{name} and {other} are both {number}: each service "
                                       "needs its own port")
    try:
        run_loop(lambda: run_demo(data, port, every, concurrent, show_calls=10,
                                  flow_name=flow_name, web_port=web_port,
                                  control_port=control_port))
    except DataFolderInUse as exc:
        raise click.ClickException(str(exc)) from exc
    except sqlite3.DatabaseError as exc:  # damaged, foreign, or from newer software
        raise click.ClickException(f"could not open the database: {exc}") from exc
    except OSError as exc:
        # Only a port in use gets the hint: a data folder that is a file, or read-only,
        # is named by the error itself.
        hint = (" (another appliance running? try --port, --web-port, --control-port)"
                if exc.errno == errno.EADDRINUSE else "")
        raise click.ClickException(f"could not start: {exc}{hint}") from exc


@main.command()
@click.option("--data", type=DataFolder(), default=DEFAULT_DATA, show_default=True)
@click.option("--audiosocket", default="127.0.0.1:9092", show_default=True,
              help="HOST:PORT the AudioSocket server listens on ('' for none).")
@click.option("--sim/--no-sim", default=False, help="Also run the simulated exchange.")
@click.option("--flow", "flow_name", type=click.Choice(["insurance", "demo"]),
              default="insurance", show_default=True,
              help="The published insurance IVR, or the foundation's small demo flow.")
@click.option("--control-port", default=9093, show_default=True, type=PORT,
              help="Port of the control API on 127.0.0.1 when the box has seats and queues "
                   "(0: any free port).")
@click.option("--ami", "ami_address", default="",
              help="HOST:PORT of Asterisk's AMI, which names each AudioSocket call's port, "
                   "caller and number dialled ('' for none).")
@click.option("--ami-user", default="appliance", show_default=True)
@click.option("--ami-secret-file", type=click.Path(path_type=Path, dir_okay=False),
              default=None, help="The file holding the AMI account's secret (with --ami).")
def engine(data: Path, audiosocket: str, sim: bool, flow_name: str, control_port: int,
           ami_address: str, ami_user: str, ami_secret_file: Path | None) -> None:
    """Run the engine with the configured drivers until SIGINT/SIGTERM."""
    from appliance.runtime import run_loop

    # Every option is checked before the data folder is made or locked.
    listen = _address(audiosocket, "--audiosocket") if audiosocket else None
    if listen is None and not sim:
        raise click.UsageError("no driver configured: give --audiosocket or --sim")
    ami = _ami_options(ami_address, ami_user, ami_secret_file, audiosocket)
    try:
        run_loop(lambda: _engine(data, listen, sim, flow_name, control_port, ami))
    except DataFolderInUse as exc:
        raise click.ClickException(str(exc)) from exc
    except sqlite3.DatabaseError as exc:  # damaged, foreign, or from newer software
        raise click.ClickException(f"could not open the database: {exc}") from exc
    except socket.gaierror as exc:
        raise click.ClickException(f"could not start: {exc.strerror} (is the host of "
                                   "--audiosocket or --ami a name this box resolves?)") from exc
    except OSError as exc:
        raise click.ClickException(f"could not start: {exc}") from exc


def _address(value: str, option: str) -> tuple[str, int]:
    host, _, port = value.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]  # an IPv6 address, written [::1]:9092 as in a URL
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise click.BadParameter(f"expected HOST:PORT, got {value!r}", param_hint=option)
    return host, int(port)


def _ami_options(address: str, user: str, secret_file: Path | None,
                 audiosocket: str) -> tuple[str, int, str, str] | None:
    """(host, port, user, secret) of the AMI account, checked before anything starts."""
    if not address:
        return None
    if not audiosocket:
        raise click.UsageError("--ami names the channels of AudioSocket calls: it needs "
                               "--audiosocket")
    host, port = _address(address, "--ami")
    if secret_file is None:
        raise click.UsageError("--ami needs --ami-secret-file (the secret of the AMI account "
                               "in manager.conf)")
    try:
        # utf-8-sig: a BOM (Windows Notepad's UTF-8) is not part of the secret Asterisk has
        secret = secret_file.read_bytes().decode("utf-8-sig").strip()
    except OSError as exc:
        raise click.BadParameter(f"cannot read {secret_file}: {exc.strerror}",
                                 param_hint="--ami-secret-file") from None
    except UnicodeDecodeError:
        raise click.BadParameter(f"{secret_file} is not UTF-8 text (saved as UTF-16, "
                                 "\"Unicode\"?)", param_hint="--ami-secret-file") from None
    if not secret:
        raise click.BadParameter(f"{secret_file} is empty", param_hint="--ami-secret-file")
    if not secret.isprintable():
        # Sent on every login, it could never go on one AMI line: the engine would come up
        # and retry for ever without its channels' ports and numbers.
        raise click.BadParameter(f"{secret_file} holds more than the secret on one line "
                                 "(just the secret= value of manager.conf)",
                                 param_hint="--ami-secret-file")
    if not user or not user.isprintable() or ":" in user:
        raise click.BadParameter(f"{user!r} is not an AMI user name", param_hint="--ami-user")
    return host, port, user, secret


async def _engine(data: Path, listen: tuple[str, int] | None, sim: bool, flow_name: str,
                  control_port: int, ami_account: tuple[str, int, str, str] | None) -> None:
    from appliance.acd import Acd, records
    from appliance.calls.call import FlowFn
    from appliance.calls.clock import MonotonicClock
    from appliance.calls.engine import Engine
    from appliance.control import ControlServer
    from appliance.demo.flow import make_demo_flow
    from appliance.media.prompts import PromptLibrary
    from appliance.runtime import DataDirs, install_stop_signals
    from appliance.store.db import Store
    from appliance.voicemail import recovery_hook
    from drivers.base import Driver

    # Absolute, so the recording paths the CDR rows keep hold from any working folder.
    dirs = DataDirs(data.resolve()).create().claim()
    drivers: list[Driver] = []
    ami = None
    if listen is not None:
        from drivers.asterisk.audiosocket import AudioSocketDriver
        from drivers.asterisk.channels import ChannelMap

        host, port = listen
        channels = ChannelMap() if ami_account is not None else None
        asterisk = AudioSocketDriver(host, port, channels=channels)
        drivers.append(asterisk)
        if ami_account is not None:
            from drivers.asterisk.ami import AmiClient

            ami_host, ami_port, user, secret = ami_account
            # Its events name inbound calls' channels and follow outbound calls; through
            # it the driver dials out.
            ami = asterisk.ami = AmiClient(ami_host, ami_port, user, secret,
                                           on_event=asterisk.on_ami_event)
    store = Store(dirs.database)
    if sim:
        from appliance.box.settings import reserved_inbound_channels
        from drivers.sim import SimExchange

        exchange = SimExchange()
        exchange.reserved_inbound = reserved_inbound_channels(store)
        drivers.append(exchange)
    prompts = PromptLibrary()
    prompts.preload()
    flow: FlowFn
    fax_driver: Driver | None = None
    # The ACD exists when the box has seats and queues saved (a previous run or the admin).
    seats, queues = records.load_seats(store), records.load_queues(store)
    acd = Acd(seats, queues, store=store, messages_dir=dirs.messages) \
        if seats and queues else None
    control = ControlServer(acd, dirs.root, store=store, port=control_port) if acd else None
    if acd is not None:
        acd.restore_callbacks()
    if flow_name == "insurance":
        from appliance.ivr.service import insurance_ivr

        # Callback faxes need a line to dial out on: Asterisk's when the AMI is there to
        # dial, else the simulated exchange's when it runs.
        fax_driver = next((d for d in drivers if d.name == "sim"), None)
        if ami is not None:
            fax_driver = next(d for d in drivers if d.name == "asterisk")
        from appliance.conference import DEFAULT_NUMBER, Conferences

        rooms = Conferences(store)
        ivr, live = insurance_ivr(store, dirs, fax_driver=fax_driver, conference=rooms,
                                  acd=acd)
        flow = rooms.route([DEFAULT_NUMBER], ivr)
        click.echo(f"IVR flow {live.name!r} version {live.version} is live; conference "
                   f"rooms on {DEFAULT_NUMBER}")
        # Admins record prompts over the phone on a number of its own.
        from appliance.promptrec.phone import DEFAULT_NUMBER as RECORDING_NUMBER
        from appliance.promptrec.phone import PromptRecording

        flow = PromptRecording(store, dirs.root).route([RECORDING_NUMBER], flow)
        click.echo(f"prompt recording by phone on {RECORDING_NUMBER}")
        from appliance.ivr.port_routes import PortRoutes

        # Outermost: a port's route (a flow, a queue, a number) decides before the number.
        flow = PortRoutes(store, flow, ivr.make_handler, acd=acd)
    else:
        flow = make_demo_flow(dirs.messages)
    eng = Engine(clock=MonotonicClock(), drivers=drivers, flow=flow, freeze_heap=True,
                 prompts=prompts, store=store, recordings=dirs.recordings,
                 after_recover=[recovery_hook(store, engine_folder=dirs.recordings)],
                 on_event=control.call_event if control is not None else None)
    install_stop_signals(eng.stop)
    reminders = None
    if ami is not None and flow_name == "insurance":
        from appliance.reminders.dialer import ReminderDialer

        # Premium reminder calls go out on Asterisk's trunks, through the AMI.
        reminders = ReminderDialer(eng, next(d for d in drivers if d.name == "asterisk"),
                                   store, acd=acd)
        if control is not None:
            control.reminders = reminders

    from appliance.sms.demo import forget_demo_modem
    from appliance.sms.service import SmsService

    if forget_demo_modem(store):
        click.echo("SMS: the simulated modem an earlier `make run` left set is disabled; "
                   "set the box's modem on the lines page")
    # SMS through the GSM modem of the lines page, on a thread of its own (serial I/O
    # blocks); with no modem enabled it waits, and the SMS page says why.
    sms = SmsService(store)
    sms.start()
    try:
        if acd is not None and control is not None:
            acd.bind(eng)
            await control.start()
            click.echo(f"control API on 127.0.0.1:{control.port}")
        run_task = asyncio.create_task(eng.run())
        await eng.started.wait()
        if ami is not None:
            await ami.start()
            click.echo(f"AMI client for {ami.host}:{ami.port}: names each AudioSocket "
                       "call's port and numbers, and dials out")
        reminding = asyncio.create_task(_serve_when_dialable(reminders, ami, eng)) \
            if reminders is not None and ami is not None else None
        resends = None
        if fax_driver is not None and not run_task.done():
            from appliance.fax.requests import serve_resend_requests

            # Faxes the web's fax log asks to send again; it ends when the engine stops.
            resends = asyncio.create_task(serve_resend_requests(
                eng, fax_driver, store, out_dir=dirs.root / "faxes"))
        await run_task
        for task in (resends, reminding):  # both end with the engine
            if task is not None:
                await asyncio.gather(task, return_exceptions=True)
    finally:
        if ami is not None:
            await ami.stop()
        await asyncio.get_running_loop().run_in_executor(None, sms.stop)
        if control is not None:
            await control.close()
        store.close()


async def _serve_when_dialable(reminders: ReminderDialer, ami: AmiClient,
                               engine: Engine) -> None:
    """Reminder passes once the AMI is logged in (before it, every call would fail and use
    up an attempt of the holder's), until the engine stops."""
    logged_in = asyncio.create_task(ami.logged_in.wait())
    stopped = asyncio.create_task(engine.stopped.wait())
    done, pending = await asyncio.wait({logged_in, stopped},
                                       return_when=asyncio.FIRST_COMPLETED)
    for task in pending:
        task.cancel()
    if logged_in in done and not engine.stopped.is_set():
        await reminders.serve()


@main.command(context_settings={"ignore_unknown_options": True})
@click.option("--lang", type=click.Choice(["zh", "yue", "en"]), required=True)
@click.option("--kind", type=click.Choice(["number", "money", "date", "time", "percent",
                                           "digits"]), required=True)
@click.argument("value")
def say(lang: str, kind: str, value: str) -> None:
    """Print how the IVR speaks VALUE: its segment names, then (last line) the spoken text.

    VALUE is 0 … 10^12 (number), yuan like 1234.56 (money), 2026-11-26 (date), 14:30 (time),
    3.5 or 3.5% (percent), or a digit string (digits).
    """
    from appliance.ivr.speech import say as segments_of
    from appliance.ivr.speech import spoken_text

    # ignore_unknown_options lets "-5" arrive as VALUE, so it is refused as negative
    # rather than as an unknown option.
    try:
        segments = segments_of(lang, kind, value)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc
    _answer(" ".join(segments), spoken_text(lang, segments))


@main.group()
def detect() -> None:
    """Run a detector over an 8 kHz 16-bit mono WAV file."""


@detect.command("dtmf")
@click.argument("wav", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def detect_dtmf(wav: Path) -> None:
    """Print the DTMF digits in WAV (an empty line if none)."""
    from appliance.media.dtmf import detect_dtmf_file
    from appliance.media.wavio import WavFormatError

    try:
        digits = detect_dtmf_file(wav)
    except WavFormatError as exc:
        raise click.ClickException(str(exc)) from exc
    except OSError as exc:  # a read error of the disk, a file the kernel will not give
        raise click.ClickException(f"{wav}: cannot read ({exc.strerror or exc})") from exc
    _answer(digits)


@detect.command("progress")
@click.argument("wav", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def detect_progress(wav: Path) -> None:
    """Print the outcome of an outbound call's audio: voice, busy, congestion, ringback, silence."""
    from appliance.media.progress import detect_progress_file
    from appliance.media.wavio import WavFormatError

    try:
        outcome = detect_progress_file(wav)
    except WavFormatError as exc:
        raise click.ClickException(str(exc)) from exc
    except OSError as exc:  # a read error of the disk, a file the kernel will not give
        raise click.ClickException(f"{wav}: cannot read ({exc.strerror or exc})") from exc
    _answer(outcome.value)


@main.group()
def sound() -> None:
    """The box's sound devices (a headset seat)."""


@sound.command("devices")
def sound_devices() -> None:
    """List the devices PortAudio sees: index, name, channels in/out, default rate.

    A headset seat is configured with the index or the name (or a part of it that only
    one device has); it needs at least one input and one output channel.
    """
    from drivers.sound import list_devices
    from drivers.sound.headset import open_portaudio

    pa = open_portaudio()
    try:
        devices = list_devices(pa)
    finally:
        pa.terminate()
    for device in devices:
        usable = "" if device.inputs and device.outputs else "  (not a headset: needs in and out)"
        click.echo(f"{device.describe()}{usable}")
    if not devices:
        click.echo("no sound devices")


@main.group()
def bench() -> None:
    """Benchmarks; each prints a JSON object as its last line."""


F = TypeVar("F", bound=Callable[..., None])


def _load_options(channels: int, seconds: float, warmup: float) -> Callable[[F], F]:
    """The options of the benches that drive calls over AudioSocket from the load process
    (engine, transport, ivr), with these defaults. Values that would measure nothing (no
    channel, no time, the load on the engine's own core) are refused with the option
    named, before anything starts."""

    def check_cores(ctx: click.Context, param: click.Parameter, load_core: int) -> int:
        engine_core = ctx.params.get("engine_core", 0)
        if load_core == engine_core:
            raise click.BadParameter(
                f"core {load_core} is the engine's (--engine-core): the load process must "
                "run on another core, or it would be measured with the engine", ctx, param)
        return load_core

    cores = click.IntRange(0, (os.cpu_count() or 1) - 1)
    options = [
        click.option("--channels", default=channels, show_default=True,
                     type=click.IntRange(min=1), help="Calls at once."),
        click.option("--seconds", default=seconds, show_default=True,
                     type=FiniteRange(min=1.0), help="Seconds measured."),
        click.option("--warmup", default=warmup, show_default=True,
                     type=FiniteRange(min=0.0), help="Seconds not measured."),
        click.option("--engine-core", default=0, show_default=True, type=cores,
                     is_eager=True, help="The core the engine is pinned to."),
        click.option("--load-core", default=1, show_default=True, type=cores,
                     callback=check_cores,
                     help="The load process's core (its CPU is not counted)."),
        click.option("--lead-ms", default=6.0, show_default=True,
                     type=FiniteRange(0.0, 19.0),
                     help="How long before each tick the load sends its frames."),
    ]

    def decorate(command: F) -> F:
        for option in reversed(options):
            command = option(command)
        return command

    return decorate


@bench.command("engine")
@_load_options(channels=600, seconds=20.0, warmup=3.0)
@click.option("--fixed-grid", is_flag=True,
              help="Keep the tick on the fixed 20 ms grid (no alignment to arrivals).")
def bench_engine(channels: int, seconds: float, warmup: float, engine_core: int,
                 load_core: int, lead_ms: float, fixed_grid: bool) -> None:
    """Full-featured channels over AudioSocket from a separate load process."""
    from appliance.bench.engine import run_bench

    result = run_bench(channels=channels, seconds=seconds, warmup=warmup,
                       engine_core=engine_core, load_core=load_core, lead_ms=lead_ms,
                       align_phase=not fixed_grid)
    click.echo(json.dumps(result))


@bench.command("transport")
@_load_options(channels=240, seconds=10.0, warmup=3.0)
def bench_transport(channels: int, seconds: float, warmup: float, engine_core: int,
                    load_core: int, lead_ms: float) -> None:
    """AudioSocket alone, same load as ``engine``: the CPU floor under its figure."""
    from appliance.bench.transport import run_transport_bench

    result = run_transport_bench(channels=channels, seconds=seconds, warmup=warmup,
                                 engine_core=engine_core, load_core=load_core,
                                 lead_ms=lead_ms)
    click.echo(json.dumps(result))


@bench.command("ivr")
# The warm-up is longer: the calls choose a language and reach the menus first.
@_load_options(channels=240, seconds=20.0, warmup=10.0)
@click.option("--lang", type=click.Choice(["zh", "yue", "en"]), default="zh", show_default=True)
@click.option("--fixed-grid", is_flag=True,
              help="Keep the tick on the fixed 20 ms grid (no alignment to arrivals).")
def bench_ivr(channels: int, seconds: float, warmup: float, lang: str, engine_core: int,
              load_core: int, lead_ms: float, fixed_grid: bool) -> None:
    """Key→next prompt on the default insurance IVR's menus, same harness as ``engine``."""
    from appliance.bench.engine import run_bench

    result = run_bench(channels=channels, seconds=seconds, warmup=warmup,
                       engine_core=engine_core, load_core=load_core, lead_ms=lead_ms, ivr=lang,
                       align_phase=not fixed_grid)
    click.echo(json.dumps(result))


@bench.command("lookup")
@click.option("--policies", default=100_000, show_default=True, type=click.IntRange(min=1),
              help="Size of the demo book.")
@click.option("--lookups", default=5000, show_default=True, type=click.IntRange(min=100),
              help="Policy lookups timed.")
def bench_lookup(policies: int, lookups: int) -> None:
    """Policy lookups by number with ID verification on a temporary demo book."""
    from appliance.insurance.bench import run_lookup_bench

    click.echo(json.dumps(run_lookup_bench(policies=policies, lookups=lookups)))


@bench.command("fax")
@click.option("--calls", default=50, show_default=True, type=click.IntRange(min=1),
              help="Fax calls on the noisy line.")
@click.option("--snr-db", default=20.0, show_default=True, type=FiniteRange(0.0, 60.0),
              help="White noise this many dB below the fax signal, both directions.")
@click.option("--concurrent", default=5, show_default=True, type=click.IntRange(min=1),
              help="Noisy calls at once.")
@click.option("--seed", default=1, show_default=True, type=click.IntRange(min=0),
              help="Seed of the first call's noise.")
def bench_fax(calls: int, snr_db: float, concurrent: int, seed: int) -> None:
    """One A4 fine page between two spandsp ends on the simulated line: clean, then noisy."""
    from appliance.fax.bench import run_fax_bench

    click.echo(json.dumps(run_fax_bench(calls=calls, snr_db=snr_db, concurrent=concurrent,
                                        seed=seed)))


@bench.command("acd")
@click.option("--decisions", default=20_000, show_default=True, type=click.IntRange(min=100),
              help="Routing decisions timed.")
@click.option("--seats", default=8, show_default=True, type=click.IntRange(1, 8))
@click.option("--waiting", default=50, show_default=True, type=click.IntRange(min=1),
              help="Callers waiting in the queue.")
def bench_acd(decisions: int, seats: int, waiting: int) -> None:
    """One ACD routing decision (which caller, which seats) with a full box."""
    from appliance.acd.bench import run_acd_bench

    click.echo(json.dumps(run_acd_bench(decisions=decisions, seats=seats, waiting=waiting)))


@bench.command("web")
@click.option("--policies", default=100_000, show_default=True, type=click.IntRange(min=1),
              help="Size of the demo book.")
@click.option("--calls", default=500_000, show_default=True, type=click.IntRange(min=100),
              help="CDR rows.")
@click.option("--rounds", default=20, show_default=True, type=click.IntRange(min=5),
              help="Times each list and search page is requested.")
@click.option("--import-rows", default=100_000, show_default=True,
              type=click.IntRange(min=1), help="Policies in the imported sheet.")
def bench_web(policies: int, calls: int, rounds: int, import_rows: int) -> None:
    """The web admin's list and search pages (server time, p95) on a full book, and a
    bulk policy import."""
    from web.bench import run_web_bench

    click.echo(json.dumps(run_web_bench(policies=policies, calls=calls, rounds=rounds,
                                        import_rows=import_rows)))


if __name__ == "__main__":  # pragma: no cover
    main()
