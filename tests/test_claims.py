"""README claims checked directly: memory linear in N under a fixed workspace, and results that do not depend
on the thread count or the tile shape (every k-NN function, KID, CMMD, the statistics)."""

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import ganmetrics as gm
from ganmetrics.engines import forced_tiles

PEAK_SCRIPT = textwrap.dedent("""
    import json, sys
    import numpy as np
    import ganmetrics as gm
    from ganmetrics.engines import forced_engine

    def status(field):
        with open("/proc/self/status") as fh:
            return next(int(l.split()[1]) for l in fh if l.startswith(field))

    n, engine = int(sys.argv[1]), sys.argv[2]
    rng = np.random.default_rng(0)
    real = rng.standard_normal((n, 64), dtype=np.float32)
    fake = rng.standard_normal((n, 64), dtype=np.float32) + np.float32(0.1)
    with forced_engine(engine):
        gm.prdc(real[:300], fake[:300], k=5, workspace_bytes=8 << 20)  # warm: libraries and thread pools loaded
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")  # reset the peak to the current resident size
        before = status("VmRSS")
        gm.prdc(real, fake, k=5, workspace_bytes=8 << 20)
    print(json.dumps({"peak_kb": status("VmHWM") - before}))
""")


def peak_extra_mb(n: int, engine: str = "host") -> float:
    out = subprocess.run([sys.executable, "-c", PEAK_SCRIPT, str(n), engine], capture_output=True, text=True,
                         check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])["peak_kb"] / 1024


@pytest.mark.parametrize("engine", ["host", "torch"])
def test_prdc_memory_is_linear_in_n(engine):
    """README: 'the N x M distance matrix is never built ... the rest is O((N + M) k)'. With an 8 MB tile budget,
    quadrupling N must not quadruple squared memory: 16k x 16k distances would be 1 GB in float32."""
    small, large = peak_extra_mb(4000, engine), peak_extra_mb(16000, engine)
    # per-sample state is a few hundred bytes (k neighbours, radii, norms, counts): 16k samples stay far below 64 MB
    assert large < 64, (small, large)
    assert large - small < 4 * max(small, 4.0), (small, large)  # linear growth, not quadratic (x16)


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(3)
    real = rng.standard_normal((260, 24)).astype(np.float32)
    fake = (rng.standard_normal((230, 24)) + 0.15).astype(np.float32)
    fake[:20] = real[:20]  # duplicates across the sets: ties everywhere
    return real, fake


def all_results(real, fake):
    prdc = gm.prdc(real, fake, k=4)
    pr = gm.precision_recall(real, fake, k=3)
    dc = gm.density_coverage(real, fake, k=4)
    nn1 = gm.nn1_accuracy(real, fake)
    mem = gm.memorization(real, fake)
    return {
        "prdc": [prdc[m] for m in ("precision", "recall", "density", "coverage")],
        "pr": [pr.precision, pr.recall],
        "dc": [dc.density, dc.coverage],
        "realism": gm.realism_score(real, fake, k=3).tolist(),
        "nn1": [nn1.accuracy, nn1.real_accuracy, nn1.fake_accuracy],
        "memorization": mem.flagged.tolist() + mem.nearest_train.tolist() + mem.nearest_distance.tolist(),
        "radii": gm.knn_radii(real, k=5).tolist(),
        "kid": gm.kid(real, fake, subsets=7, subset_size=100).values.tolist(),
        "kid_full": gm.kid(real, fake, subsets=None).mean,
        "cmmd": gm.cmmd(real, fake),
    }


def test_results_do_not_depend_on_threads_or_tiles(data, each_engine):
    real, fake = data
    reference = all_results(real, fake)
    stats_ref = gm.FeatureStats.from_features(real)
    try:
        for threads in ((1, 2, 4) if each_engine == "host" else (1,)):  # the thread count is the host kernels'
            gm.set_num_threads(threads)
            for tiles in (None, (7, 5), (64, 3)):
                if tiles:
                    with forced_tiles(*tiles):
                        got = all_results(real, fake)
                else:
                    got = all_results(real, fake)
                if tiles is None:  # the thread count changes nothing, bit for bit
                    assert got == reference, (threads, [k for k in got if got[k] != reference[k]])
                # every decision and k-NN output is identical for any tile shape; kernel sums over other tile
                # shapes are grouped differently: equal to float64 rounding (CMMD cancels to ~1e-11 of its sums)
                continuous = ("kid_full", "cmmd")
                assert {k: v for k, v in got.items() if k not in continuous} == \
                    {k: v for k, v in reference.items() if k not in continuous}, (threads, tiles)
                for key in continuous:
                    assert got[key] == pytest.approx(reference[key], rel=1e-9), (threads, tiles, key)
            stats = gm.FeatureStats.from_features(real)
            np.testing.assert_array_equal(stats.mean, stats_ref.mean)
            np.testing.assert_allclose(stats.cov, stats_ref.cov, rtol=0, atol=1e-15 * np.abs(stats_ref.cov).max())
    finally:
        gm.set_num_threads(0)


@pytest.mark.usefixtures("each_engine")
def test_results_do_not_depend_on_sample_order(data):
    real, fake = data
    rng = np.random.default_rng(4)
    pr, pf = rng.permutation(len(real)), rng.permutation(len(fake))
    a, b = gm.prdc(real, fake, k=4), gm.prdc(real[pr], fake[pf], k=4)
    assert [a[m] for m in ("precision", "recall", "density", "coverage")] == \
        [b[m] for m in ("precision", "recall", "density", "coverage")]
    np.testing.assert_array_equal(gm.knn_radii(real, k=5)[pr], gm.knn_radii(real[pr], k=5))
    assert gm.fid(real, fake) == pytest.approx(gm.fid(real[pr], fake[pf]), rel=1e-12)
