"""An AutoKeras search in keras-tuner's chief/worker mode over gRPC on 127.0.0.1."""

import json
import pathlib

import pytest

from tests.tuners.test_distributed import free_port, start, wait

SCRIPT = pathlib.Path(__file__).with_name("distributed_search.py")
pytestmark = pytest.mark.slow


def test_workers_run_the_trials_and_only_the_chief_trains_the_final_model(tmp_path):
    port = free_port()
    chief = start(None, tmp_path, 3, tuner_id="chief", port=port, script=SCRIPT)
    workers = [start(None, tmp_path, 3, tuner_id=f"tuner{i}", port=port, script=SCRIPT)
               for i in range(2)]
    outputs = {}
    for i, process in enumerate(workers):
        code, outputs[f"tuner{i}"] = wait(process, timeout=400)
        assert code == 0, outputs[f"tuner{i}"][-3000:]
    code, outputs["chief"] = wait(chief, timeout=400)
    assert code == 0, outputs["chief"][-3000:]
    text = "\n".join(outputs.values())
    # The final model is trained once, by the chief; the workers' fit returns None.
    assert [line for line in text.splitlines() if line.startswith("FINAL_FIT")] == ["FINAL_FIT chief"]
    for name in ("tuner0", "tuner1"):
        assert f"FIT_RETURNED {name} False" in outputs[name]
    assert "FIT_RETURNED chief True" in outputs["chief"]
    assert "EXPORTED 3 classes" in outputs["chief"] and "PREDICTED (4, 1)" in outputs["chief"]
    # Exactly max_trials trials, all completed, each proposed by the chief's oracle.
    trials = [json.loads(p.read_text()) for p in (tmp_path / "search").glob("trial_*/trial.json")]
    assert sorted(t["status"] for t in trials) == ["COMPLETED"] * 3
    oracle = json.loads((tmp_path / "search" / "oracle.json").read_text())
    assert sorted(oracle["end_order"]) == sorted(t["trial_id"] for t in trials)
