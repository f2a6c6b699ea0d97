"""What a run prints and is named: the task name follows the objective, the progress bar's epoch label reads
right in step-limited runs, and the library notices every run repeated are gone."""

from __future__ import annotations

import logging
import subprocess
import sys
import warnings
from types import SimpleNamespace

from tests.hydra_utils import compose_train
from vlmalign.utils.progress_bar import ProgressBar


def test_the_task_name_is_the_objective_unless_an_experiment_names_it(tmp_path):
    assert compose_train(["objective=dpo"], tmp_path).task_name == "dpo"  # was "mdpo" whatever the objective
    assert compose_train([], tmp_path).task_name == "mdpo"
    assert compose_train(["experiment=sft_shapes"], tmp_path).task_name == "sft"


def test_the_progress_bar_says_epoch_1_not_epoch_1_of_minus_2():
    bar = ProgressBar()
    bar._trainer = SimpleNamespace(max_epochs=-1)  # Lightning's default for a run limited by max_steps
    assert bar._get_train_description(1).strip() == "Epoch 1"
    bar._trainer = SimpleNamespace(max_epochs=3)
    assert bar._get_train_description(1).strip() == "Epoch 1/2"


def test_the_torchvision_fallback_notice_and_the_litlogger_tip_are_not_printed(caplog):
    done = subprocess.run([sys.executable, "-c", "import vlmalign.train"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and "requires torchvision" not in done.stderr + done.stdout, done.stderr
    tip = logging.getLogger("pytorch_lightning.utilities.rank_zero")
    with caplog.at_level(logging.INFO, logger="pytorch_lightning.utilities.rank_zero"):
        tip.info("💡 Tip: For seamless cloud logging and experiment tracking, try installing [litlogger](...)")
        tip.info("GPU available: False, used: False")
    assert "litlogger" not in caplog.text and "GPU available" in caplog.text


def test_a_lora_backbone_loads_without_future_warnings(tiny_checkpoint):
    from vlmalign.models import load_backbone

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        backbone = load_backbone(str(tiny_checkpoint), lora={"enabled": True, "r": 4, "alpha": 8})
    assert backbone.is_lora
    assert [str(w.message) for w in caught if issubclass(w.category, FutureWarning)] == []
