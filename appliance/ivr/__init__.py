"""The IVR: what the appliance says to callers and how it reads their input."""
