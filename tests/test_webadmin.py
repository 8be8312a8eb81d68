"""The web admin's watcher in ``make run``: an admin that dies is started again, one that
fails at every start is given up with its exit status said, and none starts after stop."""

from __future__ import annotations

import asyncio
import sys

from appliance.demo.webadmin import GIVE_UP_AFTER, WebAdmin


def exits_with(code: int) -> list[str]:
    return [sys.executable, "-c", f"raise SystemExit({code})"]


def test_an_admin_failing_at_every_start_is_given_up_with_its_status() -> None:
    said: list[str] = []
    web = WebAdmin(exits_with(3), said.append, poll_seconds=0.01, first_delay=0.01)

    async def main() -> None:
        web.start()
        await asyncio.wait_for(web.watch(), 30)

    asyncio.run(main())
    assert web.gave_up and web.process is None
    assert web.restarts == GIVE_UP_AFTER - 1
    assert all("exited with status 3" in line for line in said)
    assert "starting it again in" in said[0]
    assert f"{GIVE_UP_AFTER} times in a row" in said[-1] and "the calls go on" in said[-1]


def test_an_admin_stopped_by_the_run_is_not_started_again() -> None:
    said: list[str] = []
    sleeper = [sys.executable, "-c", "import time; time.sleep(60)"]
    web = WebAdmin(sleeper, said.append, poll_seconds=0.01, first_delay=0.01)

    async def main() -> None:
        web.start()
        process = web.process
        assert process is not None
        watching = asyncio.create_task(web.watch())
        await asyncio.sleep(0.1)
        web.stop()  # SIGTERM: the watcher must take it as the run's, not as a crash
        await asyncio.wait_for(watching, 5)
        assert process.returncode is not None

    asyncio.run(main())
    assert web.restarts == 0 and said == [] and web.process is None


def test_an_admin_that_ends_as_the_run_stops_is_not_started_again() -> None:
    # A SIGTERM to the whole process group (systemd stopping the service) ends the admin
    # and the run together; the watcher must not take that for a crash.
    said: list[str] = []
    web = WebAdmin(exits_with(0), said.append, poll_seconds=0.01, first_delay=0.01)

    async def main() -> None:
        web.start()
        await asyncio.wait_for(web.watch(running=lambda: False), 5)

    asyncio.run(main())
    assert web.restarts == 0 and said == []
