"""The validation suite: on data where the truth is known, every metric must move the documented way.

Toy mixtures give the truth directly (modes covered, fraction of samples within 3 std of a mode);
the shipped reference GANs and deliberately degraded generators supply the samples.
"""

from __future__ import annotations

import html
import os

import numpy as np
import pytest
import torch

import ganmetrics as gm
from ganmetrics.models import data, zoo
from ganmetrics.models.degraded import Blurred, Collapsed, ModeDropped, Noised, TrueSampler

N = 2000


@pytest.fixture(scope="module")
def ring():
    mix = data.ring()
    return mix, mix.sample(N, seed=1)


def test_recall_and_coverage_fall_as_modes_drop_while_precision_stays(ring):
    mix, real = ring
    assign = lambda x: mix.assign(x)[0]  # noqa: E731
    results = []
    for k in (0, 2, 4, 6):
        x = ModeDropped(TrueSampler(mix), assign, range(k)).sample(N, seed=3)
        assert mix.truth(x)["modes_covered"] == 8 - k
        results.append(gm.prdc(real, x, k=5))
    recall = [r.recall for r in results]
    coverage = [r.coverage for r in results]
    assert all(a > b for a, b in zip(recall, recall[1:])), recall
    assert all(a > b for a, b in zip(coverage, coverage[1:])), coverage
    # samples of the true modes lie inside real 5-NN balls except for tail samples (a second sample of the same
    # distribution has precision 0.997 here): 0.9 leaves room for noise, not for a defect
    assert min(r.precision for r in results) > 0.9
    # with 6 of 8 equal modes dropped, only 2/8 of the real mass has fake samples nearby (modes are 1.53 apart,
    # 30 std): recall and coverage tend to 0.25, with binomial noise sqrt(0.25 * 0.75 / 2000) = 0.01
    assert recall[-1] < 0.4 and coverage[-1] < 0.3


def test_precision_and_density_fall_with_noise(ring):
    mix, real = ring
    results, quality = [], []
    for sigma in (0.0, 0.05, 0.1, 0.3):
        x = Noised(TrueSampler(mix), sigma).sample(N, seed=4)
        quality.append(mix.truth(x)["high_quality"])
        results.append(gm.prdc(real, x, k=5))
    for key in ("precision", "density"):
        vals = [r[key] for r in results]
        assert all(a > b for a, b in zip(vals, vals[1:])), (key, vals)
    assert all(a > b for a, b in zip(quality, quality[1:]))


@pytest.mark.parametrize("model", zoo.MODELS)
@pytest.mark.parametrize("loss", zoo.LOSSES)
def test_fid_falls_as_training_progresses(model, loss):
    run = zoo.run(model, loss)
    steps = sorted(run.checkpoints)
    if model == "digits":
        from ganmetrics.extractors.digits import default_extractor

        ext = default_extractor()
        real = ext.features(data.digits()[0])
        feats = lambda s: ext.features(zoo.generator(model, loss, s, result=run).sample(len(real), seed=0))  # noqa: E731
    else:
        real = data.MIXTURES[model]().sample(N, seed=1)
        feats = lambda s: zoo.generator(model, loss, s, result=run).sample(N, seed=0)  # noqa: E731
    fids = [gm.fid(real, feats(s)) for s in steps]
    assert fids[-1] < 0.2 * fids[0], fids
    assert min(fids[len(fids) // 2:]) < min(fids[: len(fids) // 2]), fids  # the second half of training is better


def test_nn1_accuracy_approaches_half_for_a_good_generator(ring):
    mix, real = ring
    ideal = gm.nn1_accuracy(real, TrueSampler(mix).sample(N)).accuracy
    # two samples of one distribution: 0.5 with standard deviation about 1 / (2 sqrt(2N)) = 0.008; 0.05 is 6 of them
    assert abs(ideal - 0.5) < 0.05
    acc = {loss: gm.nn1_accuracy(real, zoo.generator("ring8", loss).sample(N)).accuracy for loss in zoo.LOSSES}
    best = min(acc, key=acc.get)
    untrained = gm.nn1_accuracy(real, zoo.generator("ring8", best, step=0).sample(N)).accuracy
    collapsed = gm.nn1_accuracy(real, Collapsed(zoo.generator("ring8", best), 0.05).sample(N)).accuracy
    # an untrained generator puts its samples far from every mode, and a collapsed one on a few points: their
    # samples and the real ones are separable apart from the few that land near a mode (measured 1.0 and 0.994)
    assert untrained > 0.95 and collapsed > 0.9
    assert 0.5 - 0.05 < acc[best] < 0.75, acc


def test_digits_degradations():
    from ganmetrics.extractors.digits import default_extractor

    ext = default_extractor()
    real = ext.features(data.digits()[0])
    best = zoo.generator("digits", min(zoo.LOSSES, key=lambda l: gm.fid(real, ext.features(
        zoo.generator("digits", l).sample(len(real))))))
    base = ext.features(best.sample(len(real)))
    base_fid = gm.fid(real, base)
    base_prdc = gm.prdc(real, base)
    dropped = ModeDropped(best, ext.predict, range(5)).sample(len(real))
    assert len(np.unique(ext.predict(dropped))) <= 5
    d = gm.prdc(real, ext.features(dropped))
    assert d.recall < base_prdc.recall and d.coverage < base_prdc.coverage
    assert gm.fid(real, ext.features(Blurred(best, 1.0).sample(len(real)))) > base_fid
    assert gm.fid(real, ext.features(Noised(best, 0.5, clip=True).sample(len(real)))) > base_fid
    is_base = gm.inception_score(ext.probs(best.sample(len(real)))).mean
    is_collapsed = gm.inception_score(ext.probs(Collapsed(best, 0.05).sample(len(real)))).mean
    assert is_collapsed < is_base


def test_digits_classifier_accuracy():
    from ganmetrics.extractors.digits import default_extractor

    ext = default_extractor()
    (_, _), (xte, yte) = data.digits_split(seed=0)
    acc = float((ext.predict(xte) == yte).mean())  # recomputed from the shipped weights
    assert acc == pytest.approx(ext.heldout_accuracy, abs=1e-6)  # the stored figure is this one
    assert round(acc, 3) == 0.994  # the README's "held-out accuracy 99.4 %"


def test_training_is_seeded_and_checkpoints_roundtrip(tmp_path):
    from dataclasses import replace

    from ganmetrics.models.trainer import default_config, load_run, save_run, train

    for model, loss in (("ring8", "wgan-gp"), ("digits", "hinge")):
        cfg = replace(default_config(model, loss), steps=12, checkpoint_steps=(0, 6, 12))
        a, b = train(cfg), train(cfg)
        for key in a.log:
            np.testing.assert_array_equal(a.log[key], b.log[key])
        for step in (0, 6, 12):
            for name in a.checkpoints[step]:
                assert torch.equal(a.checkpoints[step][name], b.checkpoints[step][name])
        assert np.all(np.isfinite(a.log["g_grad_norm"])) and (a.log["gp"] > 0).all() == (loss == "wgan-gp")
        save_run(a, str(tmp_path / "run.pt"))
        c = load_run(str(tmp_path / "run.pt"))
        assert c.config == cfg and sorted(c.checkpoints) == [0, 6, 12]
        np.testing.assert_array_equal(c.log["d_loss"], a.log["d_loss"])


def test_demo_writes_a_complete_report(tmp_path, capsys):
    from ganmetrics.cli import main

    assert main(["demo", "--out", str(tmp_path), "--n", "400", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "ring8: final checkpoints" in out and "digits" in out
    page = html.unescape((tmp_path / "index.html").read_text())
    pngs = [f for f in os.listdir(tmp_path) if f.endswith(".png")]
    assert len(pngs) == 18  # 4 per model, and the digits GANs' nearest training digits and realism ranking per loss
    assert {f"digits_{kind}_{loss}.png" for kind in ("nearest", "realism") for loss in ("bce", "wgan-gp", "hinge")} \
        <= set(pngs)
    for png in pngs:
        assert png in page and (tmp_path / png).stat().st_size > 5000
    assert not [f for f in os.listdir(tmp_path) if f.endswith(".tmp")]
    # every figure carries its caption, and each model section its explanation
    assert page.count("<figcaption>") == len(pngs)
    for phrase in ("'(best)' marks", "'collapsed' is that generator", "5 critic", "cannot produce 25 disjoint",
                   "sixth power of the feature scale", "nearest training digits", "Loss: wgan-gp.", "realism score"):
        assert phrase in page
