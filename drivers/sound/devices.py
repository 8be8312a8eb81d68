"""Which sound device is the headset: listing PortAudio's devices and choosing one.

A branch office plugs in whatever USB headset it bought, so the device is configured by
name (``"USB Audio"``: an exact name, or a part of one that only one device has) or by
PortAudio's index, and ``None`` means the system's default. A device that cannot do the
job (no microphone, no earpiece) is refused at once with the list of what is there, since
otherwise the seat would ring into a sound card that nobody can hear or speak into.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from drivers.base import LineError


class SoundDeviceError(LineError):
    """No such device, an ambiguous name, or a device without the channels a seat needs."""


class _PortAudio(Protocol):
    """The part of ``pyaudio.PyAudio`` this module uses (tests may pass a stand-in)."""

    def get_device_count(self) -> int: ...
    def get_device_info_by_index(self, device_index: int) -> Any: ...
    def get_host_api_info_by_index(self, host_api_index: int) -> Any: ...
    def get_default_input_device_info(self) -> Any: ...
    def get_default_output_device_info(self) -> Any: ...


@dataclass(frozen=True, slots=True)
class DeviceInfo:
    index: int
    name: str
    inputs: int  # most input channels
    outputs: int  # most output channels
    default_rate: int
    host_api: str

    def describe(self) -> str:
        return (
            f"{self.index}: {self.name!r} ({self.host_api}, {self.inputs} in / "
            f"{self.outputs} out, {self.default_rate} Hz)"
        )


def list_devices(pa: _PortAudio) -> list[DeviceInfo]:
    """Every device PortAudio found, in its index order."""
    devices = []
    for index in range(pa.get_device_count()):
        info = pa.get_device_info_by_index(index)
        api = pa.get_host_api_info_by_index(int(info["hostApi"]))
        devices.append(
            DeviceInfo(
                index=index,
                name=str(info["name"]),
                inputs=int(info["maxInputChannels"]),
                outputs=int(info["maxOutputChannels"]),
                default_rate=round(float(info["defaultSampleRate"])),
                host_api=str(api["name"]),
            )
        )
    return devices


def _default_index(pa: _PortAudio, need: str) -> int | None:
    try:
        info = (
            pa.get_default_input_device_info()
            if need == "input"
            else pa.get_default_output_device_info()
        )
    except OSError:  # PortAudio: no default device of that kind
        return None
    return int(info["index"])


def choose_device(
    pa: _PortAudio, spec: int | str | None, *, need: str, channels: int = 1
) -> DeviceInfo:
    """The device ``spec`` names, checked for ``channels`` of ``need`` ("input"/"output")."""
    if need not in ("input", "output"):
        raise ValueError(f"need is 'input' or 'output', got {need!r}")
    devices = list_devices(pa)
    listing = "; ".join(d.describe() for d in devices) or "none"
    role = "a microphone (input)" if need == "input" else "an earpiece (output)"
    if spec is None:
        index = _default_index(pa, need)
        if index is None:
            raise SoundDeviceError(
                f"sound: there is no default {need} device for the headset's {role}; "
                f"devices: {listing}"
            )
        chosen = devices[index]
    elif isinstance(spec, int):
        if not 0 <= spec < len(devices):
            raise SoundDeviceError(
                f"sound: no device with index {spec}; devices: {listing}"
            )
        chosen = devices[spec]
    else:
        exact = [d for d in devices if d.name == spec]
        partial = [d for d in devices if spec.lower() in d.name.lower()]
        # An exact name wins; a part of a name must pick out one device with the channels.
        candidates = exact or [d for d in partial if _has(d, need, channels)] or partial
        if not candidates:
            raise SoundDeviceError(f"sound: no device named {spec!r}; devices: {listing}")
        if len(candidates) > 1:
            names = "; ".join(d.describe() for d in candidates)
            raise SoundDeviceError(
                f"sound: {spec!r} matches {len(candidates)} devices ({names}); "
                "give the full name or the index"
            )
        chosen = candidates[0]
    if not _has(chosen, need, channels):
        have = chosen.inputs if need == "input" else chosen.outputs
        raise SoundDeviceError(
            f"sound: device {chosen.describe()} has {have} {need} channel(s); a headset seat "
            f"needs {role} with at least {channels}; devices: {listing}"
        )
    return chosen


def _has(device: DeviceInfo, need: str, channels: int) -> bool:
    return (device.inputs if need == "input" else device.outputs) >= channels
