"""The call-centre appliance: a real-time media engine with IVR, fax, voicemail and seats."""

import os as _os

# numpy's BLAS must not spawn a thread pool on a box whose engine is pinned to one core:
# batched frame arithmetic ran 34 times slower with it. Set before numpy is first imported.
_os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
