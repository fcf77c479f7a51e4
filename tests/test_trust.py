"""Hostile input from disk and from other ranks (issue 24): one test per family. Each asserts the error type,
that its message names the argument or file, that no input or output file changed, and, where a bomb is
involved, that memory stays bounded (peak RSS of a fresh process)."""

from __future__ import annotations

import contextlib
import io
import json
import multiprocessing as mp
import os
import pickle
import shutil
import struct
import subprocess
import sys
import textwrap
import warnings
import zipfile
import zlib

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as tmp_mp
from PIL import Image

import ganmetrics as gm
from ganmetrics import extraction
from ganmetrics import torchmetrics as gtm
from ganmetrics.cli import main
from ganmetrics.extractors import ModuleExtractor
from ganmetrics.extractors.inception import load_state
from ganmetrics.images import BadImageError


def cli(args, capsys):
    code = main([str(a) for a in args])
    out = capsys.readouterr()
    return code, out.out, out.err


def snapshot(*paths):
    """Bytes and modification time of every file (under folders too): what 'unchanged' means."""
    out = {}
    for p in paths:
        p = str(p)
        files = [os.path.join(d, f) for d, _, fs in os.walk(p) for f in fs] if os.path.isdir(p) else [p]
        for f in files:
            with open(f, "rb") as fh:
                out[f] = (fh.read(), os.stat(f).st_mtime_ns)
    return out


def one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ganmetrics: error:"), err
    return lines[0]


class Tiny(torch.nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.net = torch.nn.Sequential(torch.nn.Conv2d(3, 6, 3), torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(2),
                                       torch.nn.Flatten())

    def forward(self, x):
        return self.net(x)


@pytest.fixture(scope="module")
def tiny():
    return ModuleExtractor(Tiny(), "tiny-trust-net")


def images(n, seed, size=12):
    return np.random.default_rng(seed).integers(0, 256, (n, size, size, 3), dtype=np.uint8)


def write_folder(path, imgs):
    os.makedirs(path, exist_ok=True)
    for i, img in enumerate(imgs):
        Image.fromarray(img).save(os.path.join(path, f"{i:04d}.png"))
    return str(path)


def peak_rss_mb(code: str) -> tuple[float, str]:
    """Run ``code`` in a fresh Python; its peak resident memory (MB) minus that after importing ganmetrics, and
    its stderr."""
    prog = textwrap.dedent("""
        import resource, sys
        import ganmetrics as gm
        base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        try:
        {body}
        except Exception as exc:
            print(type(exc).__name__ + ": " + str(exc), file=sys.stderr)
        print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) / 1024)
    """).format(body=textwrap.indent(textwrap.dedent(code), "    "))
    run = subprocess.run([sys.executable, "-c", prog], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    return float(run.stdout.strip().splitlines()[-1]), run.stderr


# ------------------------------------------------------------------ 1. outputs never replace inputs
def test_an_output_that_is_an_input_is_refused_before_work(tmp_path, rng, capsys):
    x, y = rng.standard_normal((60, 4)), rng.standard_normal((50, 4)) + 0.5
    a, b = tmp_path / "a.npy", tmp_path / "b.npy"
    np.save(a, x)
    np.save(b, y)
    assert cli(["reference", a, "-o", tmp_path / "r.gmref", "--metrics", "fid,precision"], capsys)[0] == 0
    ref = tmp_path / "r.gmref"
    os.symlink(a, tmp_path / "link.npy")
    os.link(b, tmp_path / "hard.npy")
    os.makedirs(tmp_path / "sub")
    before = snapshot(a, b, ref)
    cases = [
        (["reference", a, "-o", a], "--output"),
        (["reference", a, "-o", tmp_path / "sub" / ".." / "a.npy"], "--output"),  # another path to it
        (["reference", a, "-o", tmp_path / "link.npy"], "--output"),  # through a symbolic link
        (["stats", b, "-o", tmp_path / "hard.npy"], "--output"),  # a hard link (refused, whatever its name)
        (["leaderboard", ref, b, "--csv", b], "--csv"),
        (["leaderboard", ref, b, "--csv", ref], "--csv"),
        (["leaderboard", ref, b, "--csv", tmp_path / "hard.npy"], "--csv"),
        (["leaderboard", ref, b, "--html", tmp_path, "--n-boot", "0"], "--html"),  # DIR/... is not an input here,
    ]
    # ... but it is once an input sits where the page's plot would go
    shutil.copy(b, tmp_path / "metrics.png")
    cases[-1] = (["leaderboard", ref, tmp_path / "metrics.png", "--html", tmp_path, "--n-boot", "0"], "--html")
    for args, flag in cases:
        code, _, err = cli(args, capsys)
        line = one_line(err)
        assert code == 2 and flag in line and "input" in line, (args, err)
    assert snapshot(a, b, ref) == before
    assert not os.path.exists(tmp_path / "index.html")
    # an output folder that is an image input folder is refused too
    folder = write_folder(tmp_path / "imgs", images(3, 0))
    code, _, err = cli(["leaderboard", ref, folder, "--html", folder], capsys)
    assert code == 2 and "--html" in one_line(err) and sorted(os.listdir(folder)) == ["0000.png", "0001.png", "0002.png"]


# ------------------------------------------------------------------ 2. saved references are checked
def _rewrite(src, dst, header_edit=None, members=None, raw_members=None):
    """A copy of a reference with header fields or members replaced (CRCs recomputed, as a hostile or buggy
    writer would)."""
    with zipfile.ZipFile(src) as zf:
        header = json.loads(zf.read("header.json"))
        data = {n: zf.read(n) for n in zf.namelist() if n != "header.json"}
    if header_edit:
        header_edit(header)
    for key, arr in (members or {}).items():
        buf = io.BytesIO()
        np.lib.format.write_array(buf, arr)
        data[f"{key}.npy"] = buf.getvalue()
    data.update(raw_members or {})
    with zipfile.ZipFile(dst, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr("header.json", json.dumps(header))
        for name, raw in data.items():
            zf.writestr(name, raw)
    return str(dst)


def test_every_field_and_member_of_a_reference_is_checked(tmp_path, rng):
    real, fake = rng.standard_normal((400, 8)).astype(np.float32), rng.standard_normal((300, 8)).astype(np.float32)
    path = gm.Reference.build(real, k=[3, 5]).save(tmp_path / "r.gmref")
    good = gm.Reference.load(path).evaluate(fake)
    assert good["fid"] == pytest.approx(gm.fid(real, fake), rel=1e-12)
    radii = gm.Reference.load(path).radii2[3]
    npy_big = io.BytesIO()
    np.lib.format.write_array(npy_big, real)
    raw = npy_big.getvalue().replace(b"(400, 8)", b"(800, 8)")  # a header that claims more rows than its bytes

    def field(key, value):
        return lambda h: h.__setitem__(key, value)

    cases = [
        (dict(header_edit=field("n", 4000)), "'n'"),
        (dict(header_edit=field("n", "400")), "'n'"),
        (dict(header_edit=field("cov_unit_roundoff", 0.9)), "'cov_unit_roundoff'"),
        (dict(header_edit=field("cov_unit_roundoff", -1.0)), "'cov_unit_roundoff'"),
        (dict(header_edit=field("dim", 9)), "'dim'"),
        (dict(header_edit=field("ks", [3, 5, 500])), "'ks'"),
        (dict(header_edit=field("k", 4)), "'k'"),
        (dict(header_edit=field("features_dtype", "int8")), "features_dtype"),
        (dict(header_edit=field("metrics", ["fid", "nonsense"])), "nonsense"),
        (dict(members={"features": rng.standard_normal((400, 8)).astype(np.float32)}), "features"),  # other rows
        (dict(members={"features": real[:200]}), "features"),
        (dict(raw_members={"features.npy": raw}), "features"),
        (dict(members={"radii2_k3": np.where(np.arange(400) == 7, np.nan, radii)}), "radii2_k3"),
        (dict(members={"radii2_k3": -radii}), "radii2_k3"),
        (dict(members={"radii2_k3": radii[:399]}), "radii2_k3"),
        (dict(members={"mean": np.zeros(8, dtype=np.float32)}), "mean"),
        (dict(raw_members={"extra.npy": b"x"}), "extra.npy"),
    ]
    for i, (edit, words) in enumerate(cases):
        bad = _rewrite(path, tmp_path / f"bad{i}.gmref", **edit)
        before = snapshot(bad)
        with pytest.raises(ValueError) as err:
            gm.Reference.load(bad).evaluate(fake)
        assert bad in str(err.value) and words in str(err.value), (edit, str(err.value))
        assert snapshot(bad) == before
    # a compressed features member is read (not mapped), and gives the same values
    with zipfile.ZipFile(path) as zf:
        names = {n: zf.read(n) for n in zf.namelist()}
    with zipfile.ZipFile(tmp_path / "deflated.gmref", "w", zipfile.ZIP_DEFLATED) as zf:
        for n, data in names.items():
            zf.writestr(n, data)
    assert dict(gm.Reference.load(tmp_path / "deflated.gmref").evaluate(fake)) == dict(good)


# ------------------------------------------------------------------ 3. the feature cache checks its entries
def test_a_damaged_cache_entry_is_a_miss_with_a_warning(tiny, tmp_path):
    folder = write_folder(tmp_path / "imgs", images(9, 1))
    cache = str(tmp_path / "cache")
    first = extraction.run(gm.images.as_source(folder, "x"), tiny, cache_dir=cache, workers=0)
    truth = np.array(first.features)
    base = first.cache_path[:-4]
    for suffix, offset in ((".npy", -5), (".stats.npz", 200), (".json", 3)):
        raw = bytearray(open(base + suffix, "rb").read())
        raw[offset] ^= 0x5A
        with open(base + suffix, "wb") as fh:
            fh.write(raw)
        with pytest.warns(RuntimeWarning, match="feature cache entry .* damaged or implausible") as rec:
            again = extraction.run(gm.images.as_source(folder, "x"), tiny, cache_dir=cache, workers=0)
        assert base in str(rec[0].message) and not again.from_cache
        np.testing.assert_array_equal(again.features, truth)
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # the entry was replaced: a clean hit now
            hit = extraction.run(gm.images.as_source(folder, "x"), tiny, cache_dir=cache, workers=0)
        assert hit.from_cache
        np.testing.assert_array_equal(hit.features, truth)
    # a cache folder others may write in is not used; a cache_dir that is a file is an error
    shared = tmp_path / "shared"
    os.makedirs(shared)
    os.chmod(shared, 0o777)
    with pytest.warns(RuntimeWarning, match="writable by other users"):
        res = extraction.run(gm.images.as_source(folder, "x"), tiny, cache_dir=str(shared), workers=0)
    assert not res.from_cache and os.listdir(shared) == []
    (tmp_path / "file").write_text("x")
    with pytest.raises(ValueError, match="cache_dir .*file is a file"):
        gm.extract(folder, extractor=tiny, cache_dir=str(tmp_path / "file"), workers=0)
    # a cache folder that cannot be created: no cache, a warning, the right features
    (tmp_path / "ro").mkdir()
    os.chmod(tmp_path / "ro", 0o500)
    try:
        if os.access(tmp_path / "ro", os.W_OK):  # root writes anywhere: nothing to test there
            return
        with pytest.warns(RuntimeWarning, match="cannot be created"):
            got = gm.extract(folder, extractor=tiny, cache_dir=str(tmp_path / "ro" / "c"), workers=0)
        np.testing.assert_array_equal(got, truth)
    finally:
        os.chmod(tmp_path / "ro", 0o700)


# ------------------------------------------------------------------ 4. bombs
def _png_header(width: int, height: int) -> bytes:
    """A PNG that declares width x height (its pixel data is absent: decoding would fail, opening does not)."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


def _zip_with_inflating_member(path, name: str, nbytes: int, prefix: bytes = b"") -> None:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        with zf.open(name, "w", force_zip64=True) as fh:
            fh.write(prefix)
            block = b"\0" * (1 << 24)
            left = nbytes - len(prefix)
            while left > 0:
                fh.write(block[:min(left, len(block))])
                left -= len(block)


def test_decompression_is_bounded_before_it_starts(tiny, tmp_path, capsys):
    folder = write_folder(tmp_path / "imgs", images(4, 2))
    (tmp_path / "imgs" / "0009.png").write_bytes(_png_header(30000, 30000))  # 900 M pixels in a few bytes
    with pytest.raises(BadImageError, match=r"0009\.png.*over the limit"):
        gm.extract(folder, extractor=tiny, cache=False, workers=0)
    got = extraction.run(gm.images.as_source(folder, "x"), tiny, cache=False, workers=0, skip_bad=True)
    assert got.n == 4 and len(got.skipped) == 1 and "0009.png" in got.skipped[0]
    code, _, err = cli(["stats", folder, "-o", tmp_path / "s.npz", "--extractor", "digits", "--no-cache"], capsys)
    assert code == 2 and "0009.png" in one_line(err) and not os.path.exists(tmp_path / "s.npz")
    # a zip member that inflates to 1 GiB: refused from its declared size, in bounded memory
    bomb = tmp_path / "bomb.zip"
    _zip_with_inflating_member(bomb, "big.png", 1 << 30, _png_header(64, 64))
    assert os.path.getsize(bomb) < 4 << 20
    mb, err = peak_rss_mb(f"gm.images.as_source({str(bomb)!r}, 'x').load(0)")
    assert "BadImageError" in err and "big.png" in err and "not decompressed" in err, err
    assert mb < 200, mb
    # an .npz member not named *.npy, and one declaring 745 GiB, are refused before any decompression
    with zipfile.ZipFile(tmp_path / "odd.npz", "w") as zf:
        zf.writestr("mu.npy", _npy_bytes(np.zeros(3)))
        zf.writestr("sigma", b"\0" * 100)
    with pytest.raises(ValueError, match="member 'sigma' is not an .npy array"):
        gm.FeatureStats.load(tmp_path / "odd.npz")
    huge = _npy_bytes(np.zeros((1, 1)))
    huge = huge.replace(b"(1, 1)", b"(10000000, 10000)")
    with zipfile.ZipFile(tmp_path / "huge.npz", "w") as zf:
        zf.writestr("features.npy", huge)
    with pytest.raises(ValueError, match=r"huge\.npz.*745\.1 GiB"):
        gm.prdc(str(tmp_path / "huge.npz"), str(tmp_path / "huge.npz"))
    # a deflated image .npz is read image by image, never decompressed whole
    big = tmp_path / "imgs.npz"
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": "|u1", "fortran_order": False, "shape": (40000, 64, 64, 3)})
    header = buf.getvalue()
    _zip_with_inflating_member(big, "arr_0.npy", len(header) + 40000 * 64 * 64 * 3, header)
    mb, err = peak_rss_mb(f"""
        src = gm.images.as_source({str(big)!r}, 'x')
        assert len(src) == 40000 and src.load(0).shape == (64, 64, 3) and src.load(5).shape == (64, 64, 3)
    """)
    assert err == "" and mb < 150, (mb, err)  # the array is 470 MiB


def _npy_bytes(a) -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array(buf, a)
    return buf.getvalue()


# ------------------------------------------------------------------ 5. ranks that disagree
def _disagreeing_worker(rank, size, folder):
    dist.init_process_group("gloo", init_method=f"file://{folder}/rendezvous", rank=rank, world_size=size)
    try:
        rng = np.random.default_rng(rank)
        x, y = rng.standard_normal((30, 4)), rng.standard_normal((30, 4))
        out = {}
        for name, call in (
                ("k", lambda: gm.prdc(x, y, k=3 + rank, group="default")),
                ("seed", lambda: gm.kid(x, y, subsets=3, subset_size=10, seed=rank, group="default")),
                ("calls", lambda: gm.prdc(x, y, group="default") if rank == 0 else gm.kid(x, y, group="default")),
                ("dtype", lambda: gm.prdc(x.astype(np.float32) if rank else x, y, group="default"))):
            try:
                call()
                out[name] = None
            except gm.engines.ring.ShardError as exc:
                out[name] = str(exc)
        out["after"] = float(gm.fid(x, y, group="default"))  # the group still works after the refusals
        with open(os.path.join(folder, f"rank{rank}.pkl"), "wb") as fh:
            pickle.dump(out, fh)
    finally:
        dist.destroy_process_group()


@pytest.mark.timeout(240)
def test_ranks_that_disagree_get_one_error_naming_the_argument(tmp_path):
    tmp_mp.spawn(_disagreeing_worker, args=(2, str(tmp_path)), nprocs=2, join=True)
    got = [pickle.load(open(tmp_path / f"rank{r}.pkl", "rb")) for r in range(2)]
    for key, words in (("k", "disagree on 'k' of prdc"), ("seed", "disagree on 'seed' of kid"),
                       ("calls", "not making the same call"), ("dtype", "disagree on input 1 of prdc")):
        assert got[0][key] == got[1][key] and words in got[0][key], (key, got[0][key])
    assert "rank 0: 3" in got[0]["k"] and "rank 1: 4" in got[0]["k"]
    assert "rank 0: prdc" in got[0]["calls"] and "rank 1: kid" in got[0]["calls"]
    assert got[0]["after"] == got[1]["after"]


# ------------------------------------------------------------------ 6. numbers
@pytest.mark.usefixtures("each_engine")
def test_tiny_magnitudes_are_refused_and_subnormals_exact(rng):
    x, y = rng.standard_normal((200, 8)), rng.standard_normal((150, 8)) + 0.3
    for call in (lambda: gm.prdc(x * 1e-160, y * 1e-160), lambda: gm.fid(x * 1e-160, y * 1e-160),
                 lambda: gm.knn_radii(x * 1e-170, k=3)):
        with pytest.raises(ValueError, match="underflow float64; multiply the features by a power of two"):
            call()
    base = gm.prdc(x, y)  # 2^-100 still works exactly (decisions invariant to power-of-two scaling)
    assert dict(gm.prdc(x * 2.0**-400, y * 2.0**-400)) == dict(base)
    xs, ys = x * 2.0**-1070, y * 2.0**-1070  # subnormal: exact values, few digits
    assert gm.cmmd(xs, ys) == pytest.approx(gm.cmmd(xs * 2.0**1000, ys * 2.0**1000), rel=1e-13)


def test_inception_score_reads_probabilities_by_the_rounding_of_their_dtype(rng):
    logits = rng.standard_normal((500, 30)) * 3
    p = np.exp(logits - logits.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    truth = gm.inception_score(logits).mean
    for dtype, tol in ((np.float32, 1e-5), (np.float16, 5e-3)):
        assert gm.inception_score(p.astype(dtype)).mean == pytest.approx(truth, rel=tol)
    assert gm.inception_score(torch.from_numpy(p).to(torch.bfloat16)).mean == pytest.approx(truth, rel=3e-2)
    with pytest.raises(ValueError, match="rows sum to .* not 1 .* kind='logits'"):
        gm.inception_score(p * 0.9)
    assert gm.inception_score(p * 0.9, kind="logits").mean > 0  # said explicitly: read as logits
    with pytest.raises(ValueError, match="kind='probabilities' but"):
        gm.inception_score(logits, kind="probabilities")
    with pytest.raises(ValueError, match="kind must be one of"):
        gm.inception_score(p, kind="probs")


# ------------------------------------------------------------------ 7. fork
def _forked_child(queue):
    try:
        with warnings.catch_warnings(record=True) as rec:
            warnings.simplefilter("always")
            gm.set_num_threads(2)
            gm.set_num_threads(0)
        rng = np.random.default_rng(3)
        a, b = rng.standard_normal((300, 16)), rng.standard_normal((300, 16))
        with gm.engines.forced_engine("torch", None):
            torch_precision = gm.prdc(a, b, k=3).precision
        queue.put((gm.prdc(a, b, k=3).precision, torch_precision, float(gm.fid(a, b)), gm.get_num_threads(),
                   [str(w.message) for w in rec]))
    except Exception as exc:  # noqa: BLE001 - reported to the parent
        queue.put(repr(exc))


def test_a_forked_child_works_whatever_it_asks_for(rng):
    x, y = rng.standard_normal((400, 16)), rng.standard_normal((400, 16))
    gm.prdc(x, y, k=3)  # the parent's OpenMP pools (ganmetrics' and torch's) now exist
    gm.FeatureStats.from_features(x)
    with gm.engines.forced_engine("torch", None):
        gm.prdc(x, y, k=3)
    ctx = mp.get_context("fork")
    queue = ctx.Queue()
    child = ctx.Process(target=_forked_child, args=(queue,))
    child.start()
    child.join(timeout=90)
    if child.is_alive():
        child.kill()
        pytest.fail("the forked child hung after set_num_threads")
    got = queue.get(timeout=5)
    assert not isinstance(got, str), got
    precision, torch_precision, value, threads, messages = got
    rng3 = np.random.default_rng(3)
    a, b = rng3.standard_normal((300, 16)), rng3.standard_normal((300, 16))
    assert precision == torch_precision == gm.prdc(a, b, k=3).precision
    assert value == pytest.approx(gm.fid(a, b), rel=1e-12) and threads == 1
    assert messages and all("forked" in m for m in messages)


# ------------------------------------------------------------------ 8. formats and arrays
def test_misnamed_empty_and_truncated_files_get_one_clear_error(tmp_path, rng, capsys):
    x = rng.standard_normal((30, 4))
    np.savez(tmp_path / "zip.npy", features=x)  # numpy appends .npz: rename to hide it
    os.replace(tmp_path / "zip.npy.npz", tmp_path / "zip.npy")
    (tmp_path / "empty.npy").write_bytes(b"")
    (tmp_path / "header.npy").write_bytes(_npy_bytes(x)[:128])
    (tmp_path / "half.npy").write_bytes(_npy_bytes(x)[:400])
    np.save(tmp_path / "y.npy", x + 1)
    for name, words in (("zip.npy", "zip archive"), ("empty.npy", "empty"), ("header.npy", "truncated"),
                        ("half.npy", "truncated")):
        p = str(tmp_path / name)
        with pytest.raises(ValueError, match=words) as err:
            gm.prdc(p, str(tmp_path / "y.npy"))
        assert p in str(err.value)
        code, _, err_text = cli(["fid", p, tmp_path / "y.npy"], capsys)
        assert code == 2 and name in one_line(err_text) and words in err_text
    st = gm.FeatureStats.from_features(x)
    for bad in ("s.npy", "s"):
        with pytest.raises(ValueError, match="ending in .npz"):
            st.save(tmp_path / bad)
        assert not os.path.exists(tmp_path / bad)
    code, _, err = cli(["stats", tmp_path / "y.npy", "-o", tmp_path / "s.npy"], capsys)
    assert code == 2 and ".npz" in one_line(err) and not os.path.exists(tmp_path / "s.npy")
    st.save(tmp_path / "s.npz")
    assert gm.FeatureStats.load(tmp_path / "s.npz").n == 30


def test_rgb_input_to_a_one_channel_extractor_and_the_layout_rule(tmp_path):
    rgb = np.random.default_rng(4).integers(0, 256, (6, 8, 8, 3), dtype=np.uint8)
    luma = np.stack([np.asarray(Image.fromarray(im).convert("L")) for im in rgb])[:, :, :, None]
    want = gm.extract(luma, extractor="digits", cache=False, workers=0)
    for given in (rgb, torch.from_numpy(rgb).permute(0, 3, 1, 2), rgb.astype(np.float32) / 255):
        np.testing.assert_array_equal(gm.extract(given, extractor="digits", cache=False, workers=0), want)
    np.save(tmp_path / "rgb.npy", rgb)
    np.testing.assert_array_equal(gm.extract(str(tmp_path / "rgb.npy"), extractor="digits", cache=False, workers=0), want)
    # the README's rule: NCHW when dimension 1 has 1 or 3 channels (so (4, 3, 8, 3) is 3-channel 8 x 3 images)
    src = gm.images.as_source(np.zeros((4, 3, 8, 3), np.uint8), "x")
    assert src.layout == "NCHW" and src.load(0).shape == (8, 3, 3)
    assert gm.images.to_uint8_image(np.zeros((3, 8, 3), np.uint8), "x").shape == (8, 3, 3)


# ------------------------------------------------------------------ rough edges
def _stats_file(path, n):
    np.savez(path, mu=np.zeros(4), sigma=np.eye(4), n=np.uint64(n))
    return str(path)


def test_rough_edges_get_one_clear_error_each(tmp_path, rng, capsys):
    x, y = rng.standard_normal((60, 4)), rng.standard_normal((50, 4))
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y.npy", y)
    xs, ys = str(tmp_path / "x.npy"), str(tmp_path / "y.npy")
    for args, words in ((["prdc", xs, ys, "--k", "0"], "--k: must be at least 1"),
                        (["kid", xs, ys, "--subsets", "-3"], "--subsets: must be at least 1"),
                        (["compare", xs, ys, "--metrics", ""], "names no metric"),
                        (["compare", xs, ys, "--metrics", " , "], "names no metric"),
                        (["stats", xs, "-o", tmp_path / "o.npz", "--batch-size", "0"], "--batch-size: must be at least 1"),
                        (["fid", xs], "the following arguments are required: FAKE"),
                        (["prdc", xs, ys, "--k", "2.5"], "is not an integer")):
        code, _, err = cli(args, capsys)
        assert code == 2 and words in one_line(err), (args, err)
    ref = tmp_path / "r.gmref"
    assert cli(["reference", xs, "-o", ref, "--metrics", "fid"], capsys)[0] == 0
    code, _, err = cli(["leaderboard", ref, ys, "--n-boot", "-1"], capsys)
    assert code == 2 and "--n-boot: must be at least 0" in one_line(err)
    long_name = tmp_path / ("o" * 300 + ".npz")
    code, _, err = cli(["stats", xs, "-o", long_name], capsys)
    assert code == 2 and "o" * 50 in one_line(err) and ".tmp" not in err
    # stdout that cannot be written (a full disk): one line on stderr
    full = open("/dev/full", "w")
    try:
        with contextlib.redirect_stdout(full):
            code = main(["fid", xs, ys])
    finally:
        with contextlib.suppress(OSError):
            full.close()
    assert code == 2 and "cannot write the result to standard output" in one_line(capsys.readouterr().err)
    # an --extractor file that fails, and weights that hold code
    (tmp_path / "broken.py").write_text("import torch\nraise RuntimeError('no GPU here')\n")
    folder = write_folder(tmp_path / "imgs", images(3, 5))
    code, _, err = cli(["stats", folder, "-o", tmp_path / "s.npz", "--extractor", f"{tmp_path}/broken.py:Net",
                        "--no-cache"], capsys)
    assert code == 2 and "broken.py" in one_line(err) and "line 2" in err and "no GPU here" in err
    torch.save({"state_dict": {"w": torch.zeros(2)}, "payload": Image.new("L", (1, 1))}, tmp_path / "code.pth")
    with pytest.raises(ValueError) as err:
        load_state(str(tmp_path / "code.pth"))
    assert "code.pth" in str(err.value) and "weights_only" not in str(err.value)

    cases = [
        (lambda: gm.cmmd(x, y, sigma=-1.0), ValueError, "sigma must be positive"),
        (lambda: gm.cmmd(x, y, scale=-2.0), ValueError, "scale must be a positive"),
        (lambda: gm.fid_infinity(x, y, num_points=-5), ValueError, "num_points"),
        (lambda: gm.fid_infinity(x, y, num_points=15.7), ValueError, "num_points"),
        (lambda: gm.fid_infinity(x, y, sizes=[10.5, 40.2]), ValueError, "sizes must be a 1-D sequence of integers"),
        (lambda: gm.prd(x[:15], y[:15], num_clusters=20), ValueError, "more than the smaller set's 15"),
        (lambda: gm.prdc(gm.FeatureStats.from_features(x), y), TypeError, "real is a FeatureStats"),
        (lambda: gm.prdc(torch.from_numpy(x).to_sparse(), y), ValueError, "sparse"),
        (lambda: gm.fid(x[:1], y), ValueError, "real has 1 sample"),
        (lambda: gm.fid(x, y[:1]), ValueError, "fake has 1 sample"),
        (lambda: gm.FeatureStats.load(_stats_file(tmp_path / "n.npz", 2**64 - 1)), ValueError, "key 'n'"),
        (lambda: gm.evaluate(x, y, metrics=123), TypeError, "metrics"),
        (lambda: gtm.PrecisionRecallDensityCoverage(k=0), ValueError, "k must be a positive integer"),
        (lambda: gtm.KernelDistance(subsets=0), ValueError, "subsets must be a positive integer"),
        (lambda: gtm.FrechetDistance(num_features=4).update(torch.from_numpy(x), real="False"),
         TypeError, "real must be True or False"),
    ]
    for call, exc, words in cases:
        with pytest.raises(exc, match=words):
            call()
    assert list(gm.evaluate(x, y, metrics="fid")) == ["fid"]  # a string is one name, not its letters
    # the debiased value is said to be outside the range when the bias estimate exceeds the value
    same = rng.standard_normal((400, 2))
    with pytest.warns(gm.BiasWarning, match="debiased value"):
        iv = gm.bootstrap(same[:200], same[200:], ["fid"], n_boot=20)["fid"]
    assert iv.debiased < 0 <= iv.low
    # set_num_threads leaves torch's own count alone
    before = torch.get_num_threads()
    gm.set_num_threads(1)
    try:
        assert torch.get_num_threads() == before
    finally:
        gm.set_num_threads(0)


def test_links_fifos_and_unreadable_entries_of_a_folder_are_counted(tiny, tmp_path):
    folder = write_folder(tmp_path / "imgs", images(3, 6))
    os.symlink(tmp_path / "nowhere.png", os.path.join(folder, "0005.png"))
    os.mkfifo(os.path.join(folder, "0006.png"))
    with pytest.raises(BadImageError, match="0005.png.*dangling"):
        gm.extract(folder, extractor=tiny, cache=False, workers=0)
    got = extraction.run(gm.images.as_source(folder, "x"), tiny, cache=False, workers=0, skip_bad=True)
    assert got.n == 3 and len(got.skipped) == 2 and "FIFO" in got.skipped[1]
