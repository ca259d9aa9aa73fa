"""Test session set-up."""

import os

# Runs that do not pass `threads` use NUMBA_NUM_THREADS: two even on a one-core runner.
os.environ.setdefault("NUMBA_NUM_THREADS", "2")
