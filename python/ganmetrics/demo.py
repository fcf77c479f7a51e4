"""``ganmetrics demo``: every shipped reference GAN and degraded generator through the metric suite,
a comparison table on the terminal and an HTML report with plots.

Toy mixtures (8 Gaussians on a ring, 25 on a grid) are compared in their own 2-D space, where the
truth is known (modes covered, fraction of samples within 3 std of a mode); digits are compared in
the embedded classifier's 64-d feature space, with its class probabilities for the Inception Score.
"""

from __future__ import annotations

import html
import os
import time
import warnings
from dataclasses import dataclass, field

import numpy as np

import ganmetrics as gm
from ganmetrics._io import atomic_write
from ganmetrics._progress import progress_bar
from ganmetrics.models import data, zoo
from ganmetrics.plots import plot_nearest_neighbours, plot_realism
from ganmetrics.training.dashboard import smooth
from ganmetrics.training.log import read_log
from ganmetrics.models.degraded import Blurred, Collapsed, ModeDropped, Noised, TrueSampler

METRICS = ["fid", "kid", "precision", "recall", "density", "coverage", "nn1_accuracy"]
HIGHER_IS_BETTER = {"precision", "recall", "density", "coverage", "inception_score", "modes_covered", "high_quality",
                    "classes_covered"}


@dataclass
class Row:
    model: str
    generator: str
    step: int | None
    values: dict = field(default_factory=dict)
    intervals: dict = field(default_factory=dict)  # metric -> Interval (95 %, the real set fixed)


class Evaluator:
    """Real reference data and feature maps for one model family."""

    def __init__(self, model: str, n: int):
        self.model = model
        if model == "digits":
            from ganmetrics.extractors.digits import default_extractor

            self.extractor = default_extractor()
            images, _ = data.digits()
            self.real_images = images
            self.real = self.extractor.features(images)
            self.n = len(images)
        else:
            self.mixture = data.MIXTURES[model]()
            self.real = self.mixture.sample(n, seed=1)
            self.n = n
        # the real side of every comparison, computed once (statistics, factorization, k-NN radii)
        self.reference = gm.Reference.build(self.real, metrics=METRICS, k=5)

    @property
    def features(self):
        """The map from generated samples to the space of the reference (None: the samples themselves)."""
        return self.extractor.features if self.model == "digits" else None

    def extra(self, samples: np.ndarray) -> dict:
        """What the reference cannot tell: the Inception Score and classes covered (digits), the mixture truth."""
        if self.model == "digits":
            return {"inception_score": gm.inception_score(self.extractor.probs(samples), splits=10).mean,
                    "classes_covered": int(len(np.unique(self.extractor.predict(samples))))}
        return self.mixture.truth(samples)

    def evaluate(self, samples: np.ndarray) -> tuple[dict, dict]:
        """The metric values and the intervals the reference reports with them ((low, high) per metric)."""
        # KID: the exact full-set estimate, these sets are small
        feats = samples if self.features is None else self.features(samples)
        rep = self.reference.evaluate(feats, kid_subsets=None)
        out = dict(rep)
        out.update(self.extra(samples))
        return out, {m: (iv.low, iv.high) for m, iv in rep.intervals.items()}

    def monitor(self, out: str, label: str, background: str = "none") -> "gm.TrainingMonitor":
        """A training monitor of one run against this reference, with the same metrics as ``evaluate``."""
        return gm.TrainingMonitor(self.reference, out=out, label=label, n_samples=self.n, background=background,
                                  features=self.features, extra=self.extra, kid_subsets=None)


DEGRADED_PER_MODEL = {"toy": 7, "digits": 5}


def _degraded(model: str, best: zoo.GeneratorSampler, ev: Evaluator) -> list:
    if model == "digits":
        predict = ev.extractor.predict
        return [
            ModeDropped(best, predict, range(5), label="drop 5 of 10 digits"),
            ModeDropped(best, predict, range(8), label="drop 8 of 10 digits"),
            Collapsed(best, 0.05),
            Noised(best, 0.5, clip=True, label="noise 0.5"),
            Blurred(best, 1.0, label="blur 1 px"),
        ]
    assign = lambda x: ev.mixture.assign(x)[0]  # noqa: E731
    k = len(ev.mixture.modes)
    return [
        TrueSampler(ev.mixture),
        ModeDropped(TrueSampler(ev.mixture), assign, range(k // 4), label=f"true, drop {k // 4} of {k} modes"),
        ModeDropped(TrueSampler(ev.mixture), assign, range(k // 2), label=f"true, drop {k // 2} of {k} modes"),
        ModeDropped(TrueSampler(ev.mixture), assign, range(3 * k // 4), label=f"true, drop {3 * k // 4} of {k} modes"),
        Noised(TrueSampler(ev.mixture), 0.1, label="true + noise 0.1"),
        Noised(TrueSampler(ev.mixture), 0.3, label="true + noise 0.3"),
        Collapsed(best, 0.05, label=f"{best.label} collapsed"),
    ]


def best_loss(model: str, rows: list[Row]) -> str:
    """The loss whose final checkpoint has the lowest FID."""
    return min(zoo.LOSSES, key=lambda loss: _final(rows, model, loss).values["fid"])


def run_demo(out_dir: str = "ganmetrics-demo", train: bool = False, n: int = 2000,
             progress: bool | None = None) -> list[Row]:
    import matplotlib

    matplotlib.use("Agg")

    t0 = time.perf_counter()
    os.makedirs(out_dir, exist_ok=True)
    runs, evaluators, logs = {}, {}, {}
    rows: list[Row] = []
    samples_for_plots: dict = {}
    n_evals = sum(len(zoo.run(m, loss).checkpoints) for m, loss in zoo.RUNS) if not train else 0
    total = n_evals + DEGRADED_PER_MODEL["toy"] * 2 + DEGRADED_PER_MODEL["digits"]
    with progress_bar(total, "evaluating generators", unit="generators", enabled=progress) as bar:
        # every run goes through a TrainingMonitor, as a user's own training would: trained here with it, or
        # the shipped run's per-step log replayed into it and its checkpoints evaluated by it
        for model, loss in zoo.RUNS:
            ev = evaluators.setdefault(model, Evaluator(model, n))
            run_dir = os.path.join(out_dir, "runs", f"{model}-{loss}")
            if os.path.exists(os.path.join(run_dir, "log.jsonl")):
                os.remove(os.path.join(run_dir, "log.jsonl"))  # a fresh report, not a resumed run
            mon = ev.monitor(run_dir, f"{model}/{loss}")
            if train:
                from ganmetrics.models.trainer import default_config, train as train_run

                runs[(model, loss)] = train_run(default_config(model, loss), progress=progress, monitor=mon)
            else:
                runs[(model, loss)] = result = zoo.run(model, loss)
                for i in range(len(result.log["g_loss"])):
                    mon.log_step(i + 1, **{k: float(v[i]) for k, v in result.log.items()})
                for step in sorted(result.checkpoints):
                    mon.evaluate(step, zoo.generator(model, loss, step, result=result).sample(ev.n, seed=0))
                    bar.update(1)
            mon.close()
            logs[(model, loss)] = log = read_log(run_dir)
            for e in log.evals:
                values = {m: v for m, v in e["metrics"].items() if m != "duplicate_share"}
                if "classes_covered" in values:
                    values["classes_covered"] = int(values["classes_covered"])
                rows.append(Row(model, loss, e["step"], values, {m: tuple(b) for m, b in e["intervals"].items()}))
            samples_for_plots[(model, loss)] = zoo.generator(model, loss, result=runs[(model, loss)]).sample(ev.n,
                                                                                                              seed=0)
        for model in zoo.MODELS:
            ev = evaluators[model]
            loss = best_loss(model, rows)
            best = zoo.generator(model, loss, result=runs[(model, loss)])
            best.label = f"{loss} (best)"
            for deg in _degraded(model, best, ev):
                x = deg.sample(ev.n, seed=0)
                rows.append(Row(model, deg.label, None, *ev.evaluate(x)))
                samples_for_plots[(model, deg.label)] = x
                bar.update(1)
    _print_table(rows)
    checks = validation(rows)
    print(f"\nvalidation: {sum(c[3] for c in checks)} of {len(checks)} documented expectations hold")
    for model, what, measured, ok in checks:
        if not ok:
            print(f"  does not hold: {model}: {what} ({measured})")
    _write_report(out_dir, rows, logs, samples_for_plots, evaluators, time.perf_counter() - t0)
    return rows


# ------------------------------------------------------------------ validation
def _final(rows: list[Row], model: str, generator: str) -> Row:
    sel = [r for r in rows if r.model == model and r.generator == generator]
    return max(sel, key=lambda r: -1 if r.step is None else r.step)


def _decreasing(vals) -> bool:
    return all(a > b for a, b in zip(vals, vals[1:]))


def validation(rows: list[Row]) -> list[tuple[str, str, str, bool]]:
    """The documented expectations, checked on this run: (model, expectation, measured, holds)."""
    out = []
    for model in ("ring8", "grid25"):
        k = {"ring8": 8, "grid25": 25}[model]
        drops = [_final(rows, model, "true distribution")] + [
            _final(rows, model, f"true, drop {m} of {k} modes") for m in (k // 4, k // 2, 3 * k // 4)]
        rec, cov, prec = ([r.values[x] for r in drops] for x in ("recall", "coverage", "precision"))
        out.append((model, "recall and coverage fall as modes are dropped, precision stays >= 0.9",
                    f"recall {' > '.join(f'{v:.2f}' for v in rec)}; coverage {' > '.join(f'{v:.2f}' for v in cov)}; "
                    f"min precision {min(prec):.2f}", _decreasing(rec) and _decreasing(cov) and min(prec) >= 0.9))
        noisy = [_final(rows, model, g) for g in ("true distribution", "true + noise 0.1", "true + noise 0.3")]
        p, d = [r.values["precision"] for r in noisy], [r.values["density"] for r in noisy]
        out.append((model, "precision and density fall as noise grows",
                    f"precision {' > '.join(f'{v:.2f}' for v in p)}; density {' > '.join(f'{v:.2f}' for v in d)}",
                    _decreasing(p) and _decreasing(d)))
        nn1 = _final(rows, model, "true distribution").values["nn1_accuracy"]
        out.append((model, "1-NN accuracy is 0.5 +- 0.05 for the true distribution", f"{nn1:.3f}", abs(nn1 - 0.5) <= 0.05))
    for model in zoo.MODELS:
        for loss in zoo.LOSSES:
            sel = sorted((r for r in rows if r.model == model and r.generator == loss), key=lambda r: r.step)
            first, last = sel[0].values["fid"], sel[-1].values["fid"]
            out.append((model, f"{loss}: FID at the end of training < 1/5 of its start", f"{first:.4g} -> {last:.4g}",
                        last < 0.2 * first))
    base = _final(rows, "digits", best_loss("digits", rows)).values
    drop = _final(rows, "digits", "drop 5 of 10 digits").values
    out.append(("digits", "dropping digits lowers recall and coverage",
                f"recall {base['recall']:.2f} -> {drop['recall']:.2f}; coverage {base['coverage']:.2f} -> {drop['coverage']:.2f}",
                drop["recall"] < base["recall"] and drop["coverage"] < base["coverage"]))
    blur, noise = (_final(rows, "digits", g).values["fid"] for g in ("blur 1 px", "noise 0.5"))
    out.append(("digits", "blur and noise raise FID", f"{base['fid']:.4g} -> blur {blur:.4g}, noise {noise:.4g}",
                blur > base["fid"] and noise > base["fid"]))
    col = _final(rows, "digits", "collapsed").values["inception_score"]
    out.append(("digits", "collapse lowers the Inception Score", f"{base['inception_score']:.3g} -> {col:.3g}",
                col < base["inception_score"]))
    return out


# ------------------------------------------------------------------ terminal table
def _fmt(v, iv=None) -> str:
    """A value; with its interval, the interval's half-width beside it (the table's intervals are 95 %)."""
    if isinstance(v, (int, np.integer)):
        return str(v)
    return f"{v:.4g}" if iv is None else f"{v:.4g} ±{(iv[1] - iv[0]) / 2:.2g}"


def _table_rows(rows: list[Row], model: str, final_only: bool = True) -> tuple[list[str], list[list[str]]]:
    sel = [r for r in rows if r.model == model]
    if final_only:
        last = {}
        for r in sel:
            if r.step is not None:
                last[r.generator] = max(last.get(r.generator, -1), r.step)
        sel = [r for r in sel if r.step is None or r.step == last[r.generator]]
    keys = list(sel[0].values)
    header = ["generator", "step"] + keys
    body = [[r.generator, "" if r.step is None else str(r.step)] + [_fmt(r.values[k], r.intervals.get(k)) for k in keys]
            for r in sel]
    return header, body


def _print_table(rows: list[Row]) -> None:
    for model in zoo.MODELS:
        header, body = _table_rows(rows, model)
        widths = [max(len(h), *(len(b[i]) for b in body)) for i, h in enumerate(header)]
        print(f"\n{model}: final checkpoints and degraded generators (± half the 95 % interval, the real set "
              "fixed)")
        print("  ".join(h.rjust(w) for h, w in zip(header, widths)))
        for b in body:
            print("  ".join(c.rjust(w) for c, w in zip(b, widths)))


# ------------------------------------------------------------------ report
def _savefig(fig, path: str) -> None:
    with atomic_write(path) as fh:
        fig.savefig(fh, format="png", dpi=110, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)


def _tile(images: np.ndarray, cols: int, pad: int = 1) -> np.ndarray:
    """A grid of (n, h, w) images separated by ``pad`` grey pixels."""
    n, h, w = images.shape
    rows = (n + cols - 1) // cols
    out = np.full((rows * (h + pad) + pad, cols * (w + pad) + pad), 0.0, dtype=np.float32)
    for i, img in enumerate(images):
        r, c = divmod(i, cols)
        out[pad + r * (h + pad): pad + r * (h + pad) + h, pad + c * (w + pad): pad + c * (w + pad) + w] = img
    return out


def _plots(out_dir, rows, logs, samples, evaluators) -> dict[str, list[str]]:
    import matplotlib.pyplot as plt

    figs: dict[str, list[str]] = {m: [] for m in zoo.MODELS}
    for model in zoo.MODELS:
        ev = evaluators[model]
        gens = [k[1] for k in samples if k[0] == model]
        cols = min(5, len(gens))
        nrow = (len(gens) + cols - 1) // cols
        fig, axes = plt.subplots(nrow, cols, figsize=(3.2 * cols, 3.2 * nrow), squeeze=False)
        for ax, name in zip(axes.ravel(), gens):
            x = samples[(model, name)]
            if model == "digits":
                ax.imshow(_tile(x[:48, 0], cols=8), cmap="gray", vmin=-1, vmax=1, interpolation="nearest")
                ax.set_xticks([])
                ax.set_yticks([])
            else:
                ax.scatter(ev.real[:, 0], ev.real[:, 1], s=2, c="#bbbbbb", label="real")
                ax.scatter(x[:1000, 0], x[:1000, 1], s=2, c="#d62728", label="generated")
                lim = np.abs(ev.mixture.modes).max() + 0.6
                ax.set_xlim(-lim, lim)
                ax.set_ylim(-lim, lim)
                ax.set_aspect("equal")
            ax.set_title(name, fontsize=9)
        for ax in axes.ravel()[len(gens):]:
            ax.axis("off")
        path = f"{model}_samples.png"
        _savefig(fig, os.path.join(out_dir, path))
        figs[model].append(path)

        # metrics against training step
        keys = ["fid", "precision", "recall", "coverage"] + (["inception_score"] if model == "digits" else ["high_quality"])
        fig, axes = plt.subplots(1, len(keys), figsize=(3.3 * len(keys), 3))
        for loss in zoo.LOSSES:
            sel = sorted((r for r in rows if r.model == model and r.generator == loss and r.step is not None),
                         key=lambda r: r.step)
            for ax, key in zip(axes, keys):
                ax.plot([r.step for r in sel], [r.values[key] for r in sel], marker="o", ms=3, label=loss)
        for ax, key in zip(axes, keys):
            ax.set_title(key, fontsize=9)
            ax.set_xlabel("step", fontsize=8)
            if key == "fid":
                ax.set_yscale("log")
        axes[0].legend(fontsize=8)
        path = f"{model}_metrics_vs_step.png"
        _savefig(fig, os.path.join(out_dir, path))
        figs[model].append(path)

        # losses, gradient penalty, gradient norms and r_t, from each run's monitor log
        panels = [("g_loss", "generator loss"), ("d_loss", "discriminator loss"), ("gp", "gradient penalty (wgan-gp)"),
                  ("d_grad_norm", "D gradient norm"), ("r_t", "r_t: mean sign of D on real (BCE, hinge)")]
        panels = [p for p in panels if all(p[0] in logs[(model, loss)].scalar_names() for loss in zoo.LOSSES)]
        fig, axes = plt.subplots(1, len(panels), figsize=(3.3 * len(panels), 3))
        for loss in zoo.LOSSES:
            for ax, (key, _) in zip(axes, panels):
                if key == "r_t" and loss == "wgan-gp":
                    continue  # a critic's sign has no meaning
                steps, v = logs[(model, loss)].scalar(key)
                w, sm = smooth(v)
                ax.plot(steps[w - 1:], sm, label=loss, lw=1)
        for ax, (_, title) in zip(axes, panels):
            ax.set_title(title, fontsize=9)
            ax.set_xlabel("step", fontsize=8)
        axes[0].legend(fontsize=8)
        path = f"{model}_training.png"
        _savefig(fig, os.path.join(out_dir, path))
        figs[model].append(path)

        if model == "digits":  # the samples behind the numbers: each loss's final checkpoint
            train_images = np.clip((ev.real_images + 1) / 2, 0, 1)
            for loss in zoo.LOSSES:
                x = samples[(model, loss)]
                fake_images, feats = np.clip((x + 1) / 2, 0, 1), ev.extractor.features(x)
                path = f"{model}_nearest_{loss}.png"
                plot_nearest_neighbours(train_images, fake_images, train_features=ev.real, fake_features=feats,
                                        k=6, rows=5, path=os.path.join(out_dir, path))
                figs[model].append(path)
                path = f"{model}_realism_{loss}.png"
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")  # a sample on a real one has realism +inf; the ranking shows it
                    plot_realism(ev.real, fake_images, fake_features=feats, n=10, path=os.path.join(out_dir, path))
                figs[model].append(path)

        # precision-recall map of every generator (final checkpoints and degraded)
        fig, ax = plt.subplots(figsize=(4.6, 4.2))
        markers = "osD^v<>ph*"
        finals = [r for r in rows if r.model == model
                  and (r.step is None or r.step == max(e["step"] for e in logs[(model, r.generator)].evals))]
        for i, r in enumerate(finals):
            ax.scatter(r.values["recall"], r.values["precision"], s=36, marker=markers[i % len(markers)],
                       label=r.generator)
        ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.02, 0.5))
        ax.set_xlim(-0.05, 1.05)
        ax.set_ylim(-0.05, 1.05)
        ax.set_xlabel("recall")
        ax.set_ylabel("precision")
        ax.set_title(f"{model}: precision vs recall (k = 5)", fontsize=9)
        path = f"{model}_precision_recall.png"
        _savefig(fig, os.path.join(out_dir, path))
        figs[model].append(path)
    return figs


# One sentence for each question a reader of the report asks, next to the thing it explains.
TABLE_NOTE = (
    "Rows: the final checkpoint of each loss (step = its last training step), then generators broken on purpose. "
    "'(best)' marks the loss whose final checkpoint has the lowest FID; 'collapsed' is that generator with its "
    "latent code scaled by 0.05, so every sample crowds around G(0): simulated mode collapse. WGAN-GP stops "
    "earlier (1000 steps on the mixtures, 1500 on digits) because each of its generator steps takes 5 critic "
    "steps: those runs already make 5000 and 7500 discriminator updates, more than the 3000 of the other losses."
)
MODEL_NOTES = {
    "ring8": "Eight Gaussians (std 0.05) on a circle of radius 2, compared in 2-D where the truth is known.",
    "grid25": "25 Gaussians (std 0.05) on a 5 x 5 grid with spacing 1. Every trained GAN leaves samples between "
              "the modes: an MLP generator maps one connected Gaussian latent space continuously, so it cannot "
              "produce 25 disjoint clusters without a trail of samples between them. That is why high_quality "
              "and precision stay well below the true distribution's, and why FID, which only sees means and "
              "covariances, hardly notices.",
    "digits": "scikit-learn's 8 x 8 digits, compared in the 64-d feature space of the embedded classifier. Its "
              "features are large (x.y / d is about 70), and KID's cubic kernel (x.y / d + 1)^3 grows with the "
              "sixth power of the feature scale, so digit KIDs are around 1e4 where Inception features give "
              "values near 1e-2: compare KIDs only within one feature space.",
}
FIGURE_NOTES = {
    "samples": "Samples of each final and degraded generator (grey: real samples; red: generated). Look for "
               "missing modes, samples between modes, and collapse onto a few points.",
    "metrics_vs_step": "Each metric over training, one line per loss (FID on a log scale). Step 0 is the "
                       "untrained generator; lines end where each run stopped.",
    "training": "Training curves, smoothed: generator and discriminator losses (their scales differ between "
                "losses and are not comparable across them), the gradient penalty (WGAN-GP only), the "
                "discriminator's gradient norm and r_t, the mean sign of D on its real batch (StyleGAN2-ADA's "
                "overfitting heuristic; BCE and hinge only), all read from each run's TrainingMonitor log.",
    "nearest": "The final generator of one loss (named in the file): each generated digit beside its 6 nearest "
               "training digits in the classifier's feature space, nearest first. The rows are the most copy-like "
               "samples (lowest ratio of "
               "the distances to the nearest and the next training sample); red titles are those "
               "ganmetrics.memorization flags as copies (ratio < 1/3). A GAN that generalizes shows variations, "
               "not the training digits themselves.",
    "realism": "That generator's samples ranked by realism score (Kynkäänniemi et al. 2019): the most realistic "
               "(top) and the least (bottom, red). Low scores point at the malformed samples that precision counts "
               "as outside the real manifold.",
    "precision_recall": "Precision (are the samples realistic?) against recall (is the variety covered?) for every "
                        "generator in the table: the true distribution sits near (1, 1), dropped modes move left, "
                        "noise and blur move down, collapse goes to the bottom-left.",
}


def _html_table(header, body, css_class: str = "num") -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    rows = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in b) + "</tr>" for b in body)
    return f"<table class='{css_class}'><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>"


def _write_report(out_dir, rows, logs, samples, evaluators, seconds) -> None:
    figs = _plots(out_dir, rows, logs, samples, evaluators)
    from ganmetrics.extractors.digits import default_extractor

    parts = [
        "<!doctype html><html><head><meta charset='utf-8'><title>ganmetrics demo</title><style>",
        "body{font-family:sans-serif;max-width:1400px;margin:2em auto;padding:0 1em;color:#222}",
        "table{border-collapse:collapse;font-size:13px;margin:1em 0}td,th{border:1px solid #ccc;padding:3px 7px;"
        "text-align:right}th{background:#f2f2f2}td:first-child{text-align:left}img{max-width:100%;margin:.5em 0}"
        "figure{margin:1em 0}figcaption{font-size:13px;color:#444;max-width:60em}"
        "table.text td,table.text th{text-align:left}",
        "</style></head><body>",
        "<h1>ganmetrics demo: reference GANs through the metric suite</h1>",
        f"<p>ganmetrics {gm.__version__}; {len(rows)} generators evaluated in {seconds:.0f} s. Toy mixtures are "
        "compared in 2-D, where the truth is known (modes covered; high_quality = fraction of samples within 3 "
        "std of a mode). Digits are compared in the 64-d feature space of the embedded classifier "
        f"(held-out accuracy {default_extractor().heldout_accuracy:.2%}); the Inception Score uses its class "
        "probabilities. Lower is better for fid, kid and nn1_accuracy's distance from 0.5; higher for the rest.</p>",
        "<h2>Validation</h2><p>Each metric must move the documented way on generators whose defects are known "
        "(the same expectations are tests in tests/test_validation.py).</p>",
        _html_table(["model", "expectation", "measured", "holds"],
                    [[m, w, meas, "yes" if ok else "NO"] for m, w, meas, ok in validation(rows)], "text"),
    ]
    for model in zoo.MODELS:
        parts.append(f"<h2>{model}</h2><p>{html.escape(MODEL_NOTES[model])}</p>")
        header, body = _table_rows(rows, model)
        parts.append("<h3>Final checkpoints and degraded generators</h3><p>" + html.escape(TABLE_NOTE) + "</p>"
                     + _html_table(header, body))
        for path in figs[model]:
            kind, _, loss = path[len(model) + 1: -len(".png")].partition("_")
            if kind not in FIGURE_NOTES:  # e.g. metrics_vs_step, precision_recall
                kind, loss = path[len(model) + 1: -len(".png")], ""
            note = FIGURE_NOTES[kind] + (f" Loss: {loss}." if loss else "")
            parts.append(f"<figure><img src='{path}' alt='{path}'><figcaption>{html.escape(note)}"
                         "</figcaption></figure>")
        links = ", ".join(f"<a href='runs/{model}-{loss}/dashboard.html'>{loss}</a>" for loss in zoo.LOSSES)
        parts.append(f"<p>Training dashboards, written by each run's ganmetrics.TrainingMonitor from its log "
                     f"(runs/{model}-LOSS/log.jsonl): {links}.</p>")
        header, body = _table_rows(rows, model, final_only=False)
        body = [b for b in body if b[1]]
        parts.append("<details><summary>every checkpoint</summary>" + _html_table(header, body) + "</details>")
    parts.append("</body></html>")
    with atomic_write(os.path.join(out_dir, "index.html"), "w") as fh:
        fh.write("\n".join(parts))
