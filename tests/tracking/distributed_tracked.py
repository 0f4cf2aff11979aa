"""One process of a tracked synthetic search (tests/tuners/synthetic_search.py), with a kill.

Usage: as synthetic_search.py. ``KILL_BEFORE_RECORD`` names a worker (its
``KERASTUNER_TUNER_ID``) that SIGKILLs itself as its first trial ends: the
chief's oracle has ended the trial, the tracker has not yet written its record.
Every other worker ends its first trial only once that worker has begun one
(its ``started_<tuner id>_<trial id>`` marker), so it cannot run every trial
before that worker gets one, however slow that worker is to start.
"""

import os
import pathlib
import runpy
import signal
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2]))

from metanas.tracking import MlflowTracker  # noqa: E402

KILLED = os.environ.get("KILL_BEFORE_RECORD")

if KILLED and KILLED == os.environ.get("KERASTUNER_TUNER_ID"):
    def on_trial_end(self, tuner, trial):
        os.kill(os.getpid(), signal.SIGKILL)

    MlflowTracker.on_trial_end = on_trial_end
elif KILLED:
    ended = MlflowTracker.on_trial_end

    def on_trial_end(self, tuner, trial):
        # Its trial is ended in the oracle (no heartbeat needed while it waits).
        deadline = time.monotonic() + 120
        while not list(pathlib.Path(sys.argv[2]).glob(f"started_{KILLED}_*")):
            assert time.monotonic() < deadline, f"{KILLED} never began a trial"
            time.sleep(0.05)
        ended(self, tuner, trial)

    MlflowTracker.on_trial_end = on_trial_end

runpy.run_path(str(pathlib.Path(__file__).parents[1] / "tuners" / "synthetic_search.py"),
               run_name="__main__")
