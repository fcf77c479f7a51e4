"""Watching a GAN train: the signals a training loop should record (:mod:`.signals`), a monitor that logs them
and evaluates the generator in the background against a saved reference (:mod:`.monitor`), alarms
(:mod:`.alarms`), the run log and its CSV export (:mod:`.log`), an HTML dashboard (:mod:`.dashboard`) and the
comparison of several runs (:mod:`.compare`). Needs torch; the dashboard and plots need matplotlib, the
comparison's intervals scipy (``pip install ganmetrics[training]``)."""

import torch  # noqa: F401  (every module here needs it: importing this package is importing torch)

from ganmetrics.training.alarms import ALARM_KINDS, Alarm, AlarmRules, TrainingAlarm
from ganmetrics.training.compare import PairComparison, RunComparison, Summary, compare_runs
from ganmetrics.training.dashboard import write_dashboard
from ganmetrics.training.log import RunLog, export_csv, read_log
from ganmetrics.training.monitor import TrainingMonitor
from ganmetrics.training.signals import (
    discriminator_accuracy,
    discriminator_scores,
    grad_norm,
    gradient_penalty,
    r1_penalty,
    sign_rate,
)

__all__ = [
    "ALARM_KINDS", "Alarm", "AlarmRules", "TrainingAlarm", "PairComparison", "RunComparison", "Summary",
    "compare_runs", "write_dashboard", "RunLog", "export_csv", "read_log", "TrainingMonitor",
    "discriminator_accuracy", "discriminator_scores", "grad_norm", "gradient_penalty", "r1_penalty", "sign_rate",
]
