"""``make run``'s simulated modem does not outlive the run: its row is disabled when the
run stops, and an engine finding one left enabled (the run was killed) disables it, since
the kernel gives its /dev/pts number to the next terminal opened."""

from __future__ import annotations

from pathlib import Path

from appliance.box.settings import ModemSettings, load_modem, save_modem
from appliance.sms.demo import forget_demo_modem, start_demo_modem, stop_demo_modem
from appliance.store.db import Store


def test_the_demo_modem_is_disabled_when_the_run_stops(tmp_path: Path) -> None:
    with Store(tmp_path / "app.db") as store:
        modem = start_demo_modem(store)
        assert modem is not None
        settings = load_modem(store)
        assert settings is not None and settings.enabled and settings.device == modem.path
        stop_demo_modem(store, modem)
        assert load_modem(store) == ModemSettings(modem.path, 115200, "", False)
        assert not forget_demo_modem(store)  # nothing left to do
        # The next run sets its own modem again.
        again = start_demo_modem(store)
        assert again is not None
        stop_demo_modem(store, again)


def test_a_demo_modem_left_enabled_is_forgotten_and_an_admin_s_modem_is_not(
        tmp_path: Path) -> None:
    with Store(tmp_path / "app.db") as store:
        save_modem(store, ModemSettings("/dev/pts/0", 115200, "", True), by="make run")
        assert forget_demo_modem(store)
        assert load_modem(store) == ModemSettings("/dev/pts/0", 115200, "", False)
        mine = ModemSettings("/dev/ttyUSB2", 115200, "", True)
        save_modem(store, mine, by="admin")
        assert not forget_demo_modem(store)
        assert load_modem(store) == mine
