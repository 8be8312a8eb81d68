"""A sound card as an agent seat (a headset at the box), behind the Line interface."""

from drivers.sound.devices import DeviceInfo, SoundDeviceError, choose_device, list_devices
from drivers.sound.driver import HeadsetConfig, SoundDriver, SoundLine
from drivers.sound.headset import DeviceLost, Headset, HeadsetStats
from drivers.sound.resample import StreamResampler

__all__ = [
    "DeviceInfo",
    "DeviceLost",
    "Headset",
    "HeadsetConfig",
    "HeadsetStats",
    "SoundDeviceError",
    "SoundDriver",
    "SoundLine",
    "StreamResampler",
    "choose_device",
    "list_devices",
]
