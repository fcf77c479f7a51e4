"""The training monitor: each signal against a direct computation, each alarm on a run built to fail that way
(and not on healthy runs), background evaluations against blocking ones, crash-safe logs, run comparisons
against scipy's t intervals, and the monitor under torch.distributed."""

from __future__ import annotations

import datetime
import json
import math
import os
import pickle
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
import torch

import ganmetrics as gm
from ganmetrics.models import data, zoo
from ganmetrics.training import AlarmRules, TrainingAlarm, read_log
from ganmetrics.training.log import LogWriter

pytest.importorskip("matplotlib")
stats = pytest.importorskip("scipy.stats")

README = os.path.join(os.path.dirname(__file__), "..", "README.md")


def _mlp(d_in, d_out, hidden=16, seed=0):
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(d_in, hidden), torch.nn.Tanh(), torch.nn.Linear(hidden, d_out))


@pytest.fixture(scope="module")
def ring():
    mix = data.MIXTURES["ring8"]()
    real = mix.sample(600, seed=1)
    return mix, gm.Reference.build(real, metrics=["fid", "precision", "recall", "coverage"], k=5)


# ------------------------------------------------------------------------------------------ signals
@pytest.mark.parametrize("shape", [(7, 3), (5, 1, 4, 4)])
def test_gradient_penalty_and_r1_equal_per_sample_autograd(shape):
    torch.manual_seed(1)
    d = int(np.prod(shape[1:]))
    net = _mlp(d, 1).double()
    disc = lambda x: net(x.flatten(1))  # noqa: E731
    real, fake = torch.randn(shape, dtype=torch.float64), torch.randn(shape, dtype=torch.float64) * 2 + 1
    alpha = torch.rand(shape[0], dtype=torch.float64)
    gp = gm.training.gradient_penalty(disc, real, fake, alpha=alpha)
    r1 = gm.training.r1_penalty(disc, real)
    want_gp, want_r1 = 0.0, 0.0
    for i in range(shape[0]):
        x = (alpha[i] * real[i] + (1 - alpha[i]) * fake[i]).unsqueeze(0).requires_grad_(True)
        (g,) = torch.autograd.grad(disc(x).sum(), x)
        want_gp += (g.norm().item() - 1) ** 2 / shape[0]
        y = real[i].unsqueeze(0).requires_grad_(True)
        (g,) = torch.autograd.grad(disc(y).sum(), y)
        want_r1 += g.pow(2).sum().item() / shape[0]
    assert gp.item() == pytest.approx(want_gp, rel=1e-12)
    assert r1.item() == pytest.approx(want_r1, rel=1e-12)
    # both keep their graph: they can be added to D's loss
    (gp + r1).backward()
    assert net[0].weight.grad is not None and net[2].weight.grad is not None  # (the output bias has no say)


def test_gradient_penalty_draws_alpha_like_the_shipped_trainer():
    # the trainer's penalty is this function: its uniform draw is one torch.rand of shape (batch, 1, ...)
    net = _mlp(2, 1)
    real, fake = torch.randn(9, 2), torch.randn(9, 2)
    torch.manual_seed(5)
    got = gm.training.gradient_penalty(net, real, fake)
    torch.manual_seed(5)
    alpha = torch.rand(9, 1)
    assert got.item() == pytest.approx(gm.training.gradient_penalty(net, real, fake, alpha=alpha).item(), rel=1e-6)


def test_grad_norm_equals_clip_grad_norm():
    net = _mlp(4, 3)
    net(torch.randn(10, 4)).pow(2).sum().backward()
    want = torch.nn.utils.clip_grad_norm_(net.parameters(), max_norm=float("inf"))
    manual = math.sqrt(sum(float(p.grad.double().pow(2).sum()) for p in net.parameters()))
    assert gm.training.grad_norm(net) == pytest.approx(manual, rel=1e-12)
    assert gm.training.grad_norm(net) == pytest.approx(float(want), rel=1e-6)
    assert gm.training.grad_norm(_mlp(2, 2)) == 0.0  # no gradient yet


def test_r_t_and_accuracies_by_hand(tmp_path, ring):
    _, ref = ring
    d_real = torch.tensor([2.0, -1.0, 0.5, 0.0])
    d_fake = torch.tensor([-1.0, 0.2, 0.0])
    d_held = torch.tensor([1.0, -2.0])
    assert gm.training.sign_rate(d_real) == 0.25  # (1 - 1 + 1 + 0) / 4
    assert gm.training.sign_rate(d_real, threshold=0.5) == pytest.approx(-0.25)  # (1 - 1 + 0 - 1) / 4
    # held-out real: 1 of 2 scored real; fake: 2 of 3 scored fake
    assert gm.training.discriminator_accuracy(d_held, d_fake) == pytest.approx((0.5 + 2 / 3) / 2)
    mon = gm.TrainingMonitor(ref, out=tmp_path / "r", background="none")
    got = mon.log_step(3, d_loss=1.5, d_real=d_real, d_fake=d_fake, d_heldout=d_held)
    mon.close(dashboard=False)
    assert got["r_t"] == 0.25 and got["d_train_real_acc"] == 0.5 and got["d_heldout_real_acc"] == 0.5
    assert got["d_accuracy"] == pytest.approx((0.5 + 2 / 3) / 2) and got["d_real"] == pytest.approx(0.375)
    assert read_log(tmp_path / "r").steps[3] == pytest.approx(got)


# ------------------------------------------------------------------------------------------ evaluations
def test_background_thread_and_process_equal_blocking(tmp_path, ring):
    mix, ref = ring
    path = ref.save(tmp_path / "ref.gmref")
    ref = gm.Reference.load(path)
    samples = [mix.sample(300, seed=s) + 0.05 * s for s in range(3)]
    records = {}
    for mode in ("none", "thread", "process"):
        mon = gm.TrainingMonitor(ref, out=tmp_path / mode, background=mode, queue_size=1)
        for i, x in enumerate(samples):
            out = mon.evaluate(10 * i, x)
            assert (out is not None) == (mode == "none")
        mon.close(dashboard=False)
        records[mode] = [{k: e[k] for k in ("step", "metrics", "intervals", "n_samples")} for e in read_log(
            tmp_path / mode).evals]
    assert records["thread"] == records["none"] == records["process"]
    blocking = gm.Reference.load(path).evaluate(samples[1], ["fid", "precision", "recall", "coverage"])
    assert records["none"][1]["metrics"]["fid"] == float(blocking["fid"])
    assert records["none"][1]["intervals"]["recall"] == [blocking.intervals["recall"].low,
                                                         blocking.intervals["recall"].high]


def test_a_generator_module_is_sampled_from_fixed_latents_and_left_as_it_was(tmp_path, ring):
    _, ref = ring
    gen = _mlp(8, 2)
    gen.z_dim = 8
    gen.train()
    torch.manual_seed(123)
    before = torch.rand(1)
    torch.manual_seed(123)
    mon = gm.TrainingMonitor(ref, out=tmp_path / "g", n_samples=100, background="none", n_boot=0)
    a = mon.evaluate(1, gen)
    b = mon.evaluate(2, gen)
    assert torch.rand(1) == before  # the training's random stream is untouched
    assert gen.training and a["metrics"] == b["metrics"] and a["n_samples"] == 100
    with pytest.raises(ValueError, match="latent size"):
        mon.evaluate(3, _mlp(8, 2))
    calls = []
    mon.evaluate(4, lambda n: calls.append(n) or np.random.default_rng(0).normal(size=(n, 2)))
    assert calls == [100]
    with pytest.raises(ValueError, match="returned 5 samples when asked for 100"):
        mon.evaluate(5, lambda n: np.zeros((5, 2)))
    mon.close(dashboard=False)


def test_a_failing_background_evaluation_is_raised_in_the_loop(tmp_path, ring):
    mix, ref = ring

    def broken(samples):
        raise ArithmeticError("extra broke")

    mon = gm.TrainingMonitor(ref, out=tmp_path / "b", extra=broken, n_boot=0)
    mon.evaluate(0, mix.sample(100, seed=0))
    with pytest.raises(RuntimeError, match="a background evaluation failed: extra broke"):
        mon.wait()
    mon.log_step(1, g_loss=1.0)  # reported once; the monitor goes on
    mon.close()
    assert (tmp_path / "b" / "dashboard.html").exists()


def test_features_and_extra_hooks(tmp_path, ring):
    mix, ref = ring
    mon = gm.TrainingMonitor(ref, out=tmp_path / "h", background="none", n_boot=0,
                             features=lambda x: x[:, :2], extra=lambda x: {"width": float(x.shape[1])})
    x = np.concatenate([mix.sample(200, seed=4), np.ones((200, 3))], axis=1)
    rec = mon.evaluate(0, x)
    assert rec["metrics"]["width"] == 5.0
    assert rec["metrics"]["fid"] == pytest.approx(gm.fid(ref.stats, mix.sample(200, seed=4)), rel=1e-9)
    mon.close(dashboard=False)


# ------------------------------------------------------------------------------------------ alarms
def test_collapse_alarm_on_a_generator_collapsed_by_construction(tmp_path, ring):
    mix, ref = ring
    seen = []
    mon = gm.TrainingMonitor(ref, out=tmp_path / "c", background="none", callback=seen.append, n_boot=20)
    gen = _mlp(8, 2)
    gen.z_dim = 8
    mon.evaluate(0, lambda n: mix.sample(n, seed=7))  # healthy first
    mon.evaluate(1, lambda n: mix.sample(n, seed=8))
    assert not mon.alarms
    with torch.no_grad():  # every latent to one point: the generator collapsed
        gen[2].weight.zero_()
    mon.evaluate(2, gen)
    kinds = {(a.kind, a.message.split(" ")[0]) for a in mon.alarms}
    assert ("collapse", "recall") in kinds and ("collapse", "coverage") in kinds
    assert any("near-duplicate" in a.message for a in mon.alarms)
    assert seen == mon.alarms
    mon.close()
    log = read_log(tmp_path / "c")
    assert {a["alarm"] for a in log.alarms} == {"collapse"} and log.evals[-1]["metrics"]["duplicate_share"] == 1.0
    assert "near-duplicate" in open(tmp_path / "c" / "dashboard.html").read()


def _train_d(tiny: bool, steps, out, ref, raise_on=()):
    """D trained on a fixed set of 16 real samples (``tiny``) or on fresh ones each step, against a generator
    that is the real distribution itself (16-d standard normal): all D can learn is its training set."""
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    disc = _mlp(16, 1, hidden=64)
    opt = torch.optim.Adam(disc.parameters(), lr=1e-2)
    mon = gm.TrainingMonitor(ref, out=out, background="none", raise_on=raise_on,
                             rules=AlarmRules(window=50, rt_max=0.9))
    pool = torch.from_numpy(rng.normal(size=(16, 16)))
    held = torch.from_numpy(rng.normal(size=(256, 16))).float()
    for step in range(steps):
        real = (pool if tiny else torch.from_numpy(rng.normal(size=(64, 16)))).float()
        fake = torch.from_numpy(rng.normal(size=(64, 16))).float()
        dr, df = disc(real), disc(fake)
        loss = torch.nn.functional.softplus(-dr).mean() + torch.nn.functional.softplus(df).mean()
        opt.zero_grad()
        loss.backward()
        norm = gm.training.grad_norm(disc)
        opt.step()
        with torch.no_grad():
            dh = disc(held)
        mon.log_step(step, d_loss=loss, d_grad_norm=norm, d_real=dr.detach(), d_fake=df.detach(), d_heldout=dh)
    mon.close(dashboard=False)
    return mon


def test_overfitting_alarm_on_a_discriminator_that_memorises_a_tiny_real_set(tmp_path, ring):
    _, ref = ring
    mon = _train_d(True, 300, tmp_path / "o", ref)
    kinds = {(a.kind, a.message.split(" ")[0]) for a in mon.alarms}
    assert ("overfitting", "r_t") in kinds and ("overfitting", "D") in kinds  # r_t and the held-out gap
    with pytest.raises(TrainingAlarm, match="overfitting"):
        _train_d(True, 300, tmp_path / "o2", ref, raise_on=("overfitting",))
    # the same D on fresh real samples: it cannot tell them from the generator's, and no alarm fires
    healthy = _train_d(False, 300, tmp_path / "h", ref)
    assert not healthy.alarms, [a.message for a in healthy.alarms]


def test_divergence_alarm_on_a_learning_rate_that_diverges(tmp_path, ring):
    mix, ref = ring
    for lr, diverges in ((50.0, True), (1e-3, False)):
        torch.manual_seed(0)
        gen, disc = _mlp(8, 2), _mlp(2, 1)
        og, od = torch.optim.SGD(gen.parameters(), lr=lr), torch.optim.SGD(disc.parameters(), lr=lr)
        mon = gm.TrainingMonitor(ref, out=tmp_path / f"lr{lr}", background="none", rules=AlarmRules(window=20))
        for step in range(150):
            real = torch.from_numpy(mix.sample(64, seed=step))
            fake = gen(torch.randn(64, 8))
            d_loss = disc(fake.detach()).mean() - disc(real).mean()  # an unconstrained critic
            od.zero_grad()
            d_loss.backward()
            dn = gm.training.grad_norm(disc)
            od.step()
            g_loss = -disc(fake).mean()
            og.zero_grad()
            g_loss.backward()
            mon.log_step(step, g_loss=g_loss, d_loss=d_loss, d_grad_norm=dn, g_grad_norm=gm.training.grad_norm(gen))
            og.step()
        mon.close(dashboard=False)
        assert any(a.kind == "divergence" for a in mon.alarms) == diverges, [a.message for a in mon.alarms]


def test_divergence_alarm_on_nan_and_on_an_explicit_bound(tmp_path, ring):
    _, ref = ring
    mon = gm.TrainingMonitor(ref, out=tmp_path / "n", background="none", raise_on=("divergence",),
                             rules=AlarmRules(grad_norm_max=10.0))
    mon.log_step(0, g_loss=1.0, d_grad_norm=9.0)
    with pytest.raises(TrainingAlarm, match="d_grad_norm = 11 exceeds grad_norm_max 10"):
        mon.log_step(1, g_loss=1.0, d_grad_norm=11.0)
    with pytest.raises(TrainingAlarm, match="g_loss not finite"):
        mon.log_step(2, g_loss=float("nan"), d_grad_norm=1.0)
    mon.log_step(3, g_loss=float("nan"), d_grad_norm=1.0)  # still the same divergence: it fires once
    mon.close(dashboard=False)
    log = read_log(tmp_path / "n")
    assert math.isnan(log.steps[2]["g_loss"]) and len(log.alarms) == 2


def test_stalled_alarm_when_the_interval_still_holds_an_old_value(tmp_path, ring):
    mix, ref = ring
    rules = AlarmRules(stall_evaluations=3)
    stuck = gm.TrainingMonitor(ref, out=tmp_path / "s", background="none", rules=rules, n_boot=20)
    improving = gm.TrainingMonitor(ref, out=tmp_path / "i", background="none", rules=rules, n_boot=20)
    for i in range(6):
        stuck.evaluate(i, mix.sample(300, seed=i) * 1.3)  # the same broken generator, new draws
        improving.evaluate(i, mix.sample(300, seed=i) * (2.0 - 0.2 * i))
    stuck.close(dashboard=False)
    improving.close(dashboard=False)
    assert [a.kind for a in stuck.alarms] == ["stalled"] and stuck.alarms[0].step == 3
    assert not improving.alarms


def test_no_alarm_on_the_shipped_healthy_runs(tmp_path):
    from ganmetrics.demo import Evaluator

    ev = Evaluator("ring8", 1000)
    for loss in ("bce", "wgan-gp"):
        result = zoo.run("ring8", loss)
        mon = ev.monitor(str(tmp_path / loss), loss)
        for i in range(len(result.log["g_loss"])):
            mon.log_step(i + 1, **{k: float(v[i]) for k, v in result.log.items()})
        for step in sorted(result.checkpoints):
            mon.evaluate(step, zoo.generator("ring8", loss, step, result=result).sample(ev.n, seed=0))
        mon.close(dashboard=False)
        assert not mon.alarms, [a.message for a in mon.alarms]


# ------------------------------------------------------------------------------------------ logs
def test_a_run_killed_mid_write_leaves_a_readable_log(tmp_path):
    script = textwrap.dedent(f"""
        import itertools, sys
        from ganmetrics.training.log import LogWriter
        w = LogWriter({str(tmp_path / 'k' / 'log.jsonl')!r})
        w.write({{"kind": "run", "label": "k"}})
        for i in itertools.count():
            w.write({{"kind": "step", "step": i, "g_loss": 0.5 * i, "d_loss": [1.0] * 0 or 1.0}})
            if i == 50:
                print("ready", flush=True)
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "ready"
    time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    log = read_log(tmp_path / "k")
    steps = sorted(log.steps)
    assert len(steps) > 50 and steps == list(range(len(steps)))
    assert all(log.steps[s]["g_loss"] == 0.5 * s for s in steps)
    # a writer killed inside a line: that line is dropped, and a resumed run continues on a new line
    path = tmp_path / "k" / "log.jsonl"
    with open(path, "ab") as fh:
        fh.write(b'{"kind":"step","step":999999,"g_lo')
    assert read_log(path).truncated and 999999 not in read_log(path).steps
    w = LogWriter(str(path))
    w.write({"kind": "run", "label": "k"})
    w.write({"kind": "step", "step": 1_000_000, "g_loss": 1.0})
    w.close()
    again = read_log(path)
    assert again.truncated and again.steps[1_000_000] == {"g_loss": 1.0} and len(again.runs) == 2


def test_a_damaged_log_is_refused_naming_file_and_line(tmp_path):
    path = tmp_path / "log.jsonl"
    path.write_text('{"kind":"run"}\n{"kind":"step","step":1,"g_loss":1}\nnot json\n{"kind":"step","step":2}\n')
    with pytest.raises(ValueError, match=r"log.jsonl, line 3 is not valid JSON"):
        read_log(path)
    path.write_text('{"kind":"step","step":-1}\n')
    with pytest.raises(ValueError, match="line 1: a step record needs a non-negative integer step"):
        read_log(path)
    path.write_text('{"kind":"eval","step":1,"metrics":{"fid":"x"}}\n')
    with pytest.raises(ValueError, match="metrics as a name -> number"):
        read_log(path)
    path.write_text('{"kind":"weights","step":1}\n')
    with pytest.raises(ValueError, match="not a ganmetrics run-log record"):
        read_log(path)
    with pytest.raises(FileNotFoundError, match="no run log"):
        read_log(tmp_path / "nowhere")


def test_csv_export_and_dashboard(tmp_path, ring):
    mix, ref = ring
    with gm.TrainingMonitor(ref, out=tmp_path / "d", background="none", n_boot=10) as mon:
        for s in range(30):
            mon.log_step(s, g_loss=1.0 / (s + 1), d_loss=0.5, gp=0.1, d_grad_norm=1.0 + s)
            if s % 10 == 9:
                mon.evaluate(s, mix.sample(200, seed=s))
    import csv

    rows = list(csv.DictReader(open(gm.training.export_csv(tmp_path / "d", tmp_path / "d.csv"))))
    assert len(rows) == 30 and float(rows[3]["g_loss"]) == 0.25 and rows[3]["fid"] == ""
    e = read_log(tmp_path / "d").evals[1]
    assert float(rows[19]["fid"]) == e["metrics"]["fid"] and float(rows[19]["recall_low"]) == e["intervals"]["recall"][0]
    page = open(tmp_path / "d" / "dashboard.html").read()
    assert page.count("data:image/png;base64,") == 4  # losses, penalties, gradient norms, metrics
    assert "Best checkpoint by each metric" in page
    with pytest.raises(ValueError, match="is the run log itself"):
        gm.training.export_csv(tmp_path / "d", tmp_path / "d" / "log.jsonl")


def test_tensorboard_events(tmp_path, ring):
    pytest.importorskip("tensorboard", reason="tensorboard is not installed (the training extra's tensorboard)")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    mix, ref = ring
    with gm.TrainingMonitor(ref, out=tmp_path / "tb", background="none", n_boot=0, tensorboard=True) as mon:
        for s in range(5):
            mon.log_step(s, g_loss=float(s))
        mon.evaluate(4, mix.sample(200, seed=0))
    acc = EventAccumulator(str(tmp_path / "tb" / "tensorboard"))
    acc.Reload()
    assert [e.value for e in acc.Scalars("train/g_loss")] == [0.0, 1.0, 2.0, 3.0, 4.0]
    assert acc.Scalars("eval/fid")[0].step == 4


def test_argument_errors_before_any_work(tmp_path, ring):
    _, ref = ring
    with pytest.raises(ValueError, match="background must be one of"):
        gm.TrainingMonitor(ref, out=tmp_path / "e", background="gpu")
    with pytest.raises(ValueError, match="raise_on names unknown alarm kinds"):
        gm.TrainingMonitor(ref, out=tmp_path / "e", raise_on=("nan",))
    unsaved = gm.Reference.build(np.random.default_rng(0).normal(size=(50, 2)), metrics=["fid"])
    with pytest.raises(ValueError, match="loads the reference from its file"):
        gm.TrainingMonitor(unsaved, out=tmp_path / "e", background="process")
    with pytest.raises(ValueError, match="holds k-NN radii for k = \\[5\\], not k = 7"):
        gm.TrainingMonitor(ref, out=tmp_path / "e", k=7)
    with pytest.raises(ValueError, match=r"AlarmRules.rt_max must be a number in \[0, 1\] or None"):
        AlarmRules(rt_max=2)
    with pytest.raises(TypeError, match="reference must be a ganmetrics.Reference"):
        gm.TrainingMonitor(np.zeros((3, 2)), out=tmp_path / "e")
    assert not (tmp_path / "e").exists()
    mon = gm.TrainingMonitor(ref, out=tmp_path / "f", background="none")
    with pytest.raises(TypeError, match="g_loss must be a number"):
        mon.log_step(0, g_loss="low")
    with pytest.raises(ValueError, match="g_loss must be a single number"):
        mon.log_step(0, g_loss=torch.ones(3))
    with pytest.raises(ValueError, match="step must be a non-negative integer"):
        mon.log_step(-1, g_loss=1.0)
    mon.close(dashboard=False)
    with pytest.raises(ValueError, match="closed"):
        mon.log_step(1, g_loss=1.0)


# ------------------------------------------------------------------------------------------ comparing runs
def _synthetic_run(folder, label, seed, values, reference="ref-a"):
    w = LogWriter(os.path.join(folder, "log.jsonl"))
    w.write({"kind": "run", "label": label, "seed": seed, "reference": reference})
    for step, v in enumerate(values):
        w.write({"kind": "eval", "step": 100 * step, "metrics": {"fid": v, "recall": 1 - v / 100}, "intervals": {}})
    w.close()
    return folder


def test_compare_runs_against_scipy_t_intervals(tmp_path):
    rng = np.random.default_rng(0)
    a_final, b_final = rng.normal(10, 2, 5), rng.normal(13, 2, 5)
    dirs = []
    for s in range(5):  # FID over three evaluations, the best (lowest) in the middle
        dirs.append(_synthetic_run(str(tmp_path / f"a{s}"), "A", s, [30.0, a_final[s] - 1, a_final[s]]))
        dirs.append(_synthetic_run(str(tmp_path / f"b{s}"), "B", s, [30.0, b_final[s] - 1, b_final[s]]))
    cmp = gm.compare_runs(dirs, plot=tmp_path / "overlay.png")
    fin = cmp.summary("A", "fid", "final")
    lo, hi = stats.t.interval(0.95, 4, loc=a_final.mean(), scale=stats.sem(a_final))
    assert (fin.mean, fin.low, fin.high) == pytest.approx((a_final.mean(), lo, hi), rel=1e-12)
    assert cmp.summary("A", "fid", "best").mean == pytest.approx(a_final.mean() - 1, rel=1e-12)
    assert cmp.summary("A", "recall", "best").mean == pytest.approx(1 - (a_final.mean() - 1) / 100, rel=1e-12)
    pair = next(p for p in cmp.pairs if (p.metric, p.at) == ("fid", "final"))
    want = stats.ttest_rel(a_final, b_final).confidence_interval(0.95)
    assert pair.paired and (pair.low, pair.high) == pytest.approx((want.low, want.high), rel=1e-10)
    assert pair.better == ("A" if want.high < 0 else None)
    # seeds that do not match: Welch's interval
    unpaired = gm.compare_runs({"A": dirs[0:10:2], "B": [dirs[1], dirs[3], dirs[5]]})
    pair = next(p for p in unpaired.pairs if (p.metric, p.at) == ("fid", "final"))
    want = stats.ttest_ind(a_final, b_final[:3], equal_var=False).confidence_interval(0.95)
    assert not pair.paired and (pair.low, pair.high) == pytest.approx((want.low, want.high), rel=1e-10)
    assert (tmp_path / "overlay.png").stat().st_size > 5000
    assert "paired by seed" in cmp.to_markdown()
    # another reference: no comparison, said so
    other = _synthetic_run(str(tmp_path / "c0"), "C", 0, [1.0], reference="ref-b")
    assert "not all evaluated against one reference" in gm.compare_runs(dirs[:2] + [other]).notes[-1]


def test_compare_runs_intervals_cover_the_true_mean(tmp_path):
    # 5 seeds of a design whose final FID is N(20, 3): the 90 % interval holds 20 in about 90 of 100 repeats
    rng = np.random.default_rng(1)
    held = 0
    for rep in range(100):
        dirs = [_synthetic_run(str(tmp_path / f"{rep}-{s}"), "A", s, [v]) for s, v in enumerate(rng.normal(20, 3, 5))]
        s = gm.compare_runs(dirs, ["fid"], confidence=0.9).summary("A", "fid", "final")
        held += s.low <= 20 <= s.high
    assert 80 <= held <= 97  # binomial(100, 0.9): outside this range with probability < 0.5 %


# ------------------------------------------------------------------------------------------ trainer, README
def test_the_shipped_trainer_feeds_a_monitor_without_changing_its_run(tmp_path):
    from dataclasses import replace

    from ganmetrics.demo import Evaluator
    from ganmetrics.models.trainer import default_config, train

    cfg = replace(default_config("ring8", "bce"), steps=20, checkpoint_steps=(0, 10, 20))
    plain = train(cfg)
    mon = Evaluator("ring8", 300).monitor(str(tmp_path / "m"), "ring8/bce", background="thread")
    with mon:
        watched = train(cfg, monitor=mon)
    for step in (0, 10, 20):
        for name in plain.checkpoints[step]:
            assert torch.equal(plain.checkpoints[step][name], watched.checkpoints[step][name])
    log = read_log(tmp_path / "m")
    assert [e["step"] for e in log.evals] == [0, 10, 20] and sorted(log.steps) == list(range(1, 21))
    assert log.steps[7]["r_t"] == pytest.approx(float(plain.log["r_t"][6]))
    assert {"high_quality", "modes_covered", "fid"} <= set(log.evals[-1]["metrics"])


def test_the_readme_training_loop_runs(tmp_path, monkeypatch):
    text = open(README).read()
    start = text.index("## Watch a GAN train")
    block = text[text.index("```python", start) + len("```python"):text.index("```", text.index("```python", start) + 9)]
    assert len(block.strip().splitlines()) < 40
    monkeypatch.chdir(tmp_path)
    exec(compile(block, "README.md", "exec"), {"__name__": "readme"})
    log = read_log(tmp_path / "runs" / "readme")
    assert log.evals and {"fid", "recall", "coverage", "duplicate_share"} <= set(log.evals[-1]["metrics"])
    assert {"r_t", "r1", "g_grad_norm"} <= set(log.scalar_names())
    assert (tmp_path / "runs" / "readme" / "dashboard.html").exists()


# ------------------------------------------------------------------------------------------ distributed
def _ddp_worker(rank, size, folder):
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"file://{folder}/store", rank=rank, world_size=size,
                            timeout=datetime.timedelta(seconds=60))
    try:
        mix = data.MIXTURES["ring8"]()
        ref = gm.Reference.load(os.path.join(folder, "ref.gmref"))
        full = mix.sample(301, seed=5)
        bounds = [0] + list(np.cumsum([301 // size + (1 if r < 301 % size else 0) for r in range(size)]))
        mon = gm.TrainingMonitor(ref, out=os.path.join(folder, "run"), n_samples=301, group="default",
                                 background="thread")
        for step in range(3):
            mon.log_step(step, g_loss=float(rank))
        mon.evaluate(2, lambda n: full[bounds[rank]:bounds[rank] + n])
        mon.close(dashboard=False)
        with open(os.path.join(folder, f"rank{rank}.pkl"), "wb") as fh:
            pickle.dump({"n": bounds[rank + 1] - bounds[rank]}, fh)
    finally:
        dist.destroy_process_group()


def test_the_monitor_under_torch_distributed(tmp_path, ring):
    import torch.multiprocessing as mp

    mix, ref = ring
    ref.save(tmp_path / "ref.gmref")
    mp.start_processes(_ddp_worker, args=(3, str(tmp_path)), nprocs=3, start_method="spawn", join=True)
    log = read_log(tmp_path / "run")
    assert [s["g_loss"] for _, s in sorted(log.steps.items())] == [0.0, 0.0, 0.0]  # rank 0 wrote, alone
    (e,) = log.evals
    single = gm.Reference.load(tmp_path / "ref.gmref").evaluate(mix.sample(301, seed=5), list(ref.metrics))
    assert e["n_samples"] == 301 and e["metrics"]["fid"] == float(single["fid"])
    assert e["intervals"]["coverage"] == [single.intervals["coverage"].low, single.intervals["coverage"].high]
    assert json.loads(json.dumps(log.runs[0]))["world_size"] == 3
    with pytest.raises(ValueError, match="raise_on cannot be used with a group"):
        gm.TrainingMonitor(ref, out=tmp_path / "x", group="default", raise_on=("collapse",))
