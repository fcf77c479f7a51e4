"""Images to metrics: the FID Inception and the resize conventions against the peers' own code (random
weights: the real ones cannot be downloaded here), inputs, the feature cache, weights lookup, the CLI."""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import sys
import time
import zipfile

import numpy as np
import pytest
import torch
from _inception_peers import fresh_import, random_inception_state, real_torchvision
from conftest import frechet_truth, import_peer
from PIL import Image

import ganmetrics as gm
from ganmetrics import extraction
from ganmetrics.extractors import InceptionExtractor, ModuleExtractor, inception as inc, preprocess as pre
from ganmetrics.images import Generator

SIZES = [(32, 32), (64, 64), (256, 256), (512, 512), (37, 53)]


def rel(a, b) -> float:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float(np.abs(a - b).max() / np.abs(b).max())


@pytest.fixture(scope="module")
def state():
    return random_inception_state(0)


@pytest.fixture(scope="module")
def weights_file(state, tmp_path_factory):
    path = tmp_path_factory.mktemp("weights") / "random-inception.pth"
    torch.save(state, path)
    return str(path)


def images_of(size, n, seed):
    rng = np.random.default_rng(seed)
    # smooth images plus noise: resizing matters, as with photographs
    h, w = size
    yy, xx = np.mgrid[0:h, 0:w]
    base = 127 + 100 * np.sin(xx[None, :, :, None] / (3 + rng.random((n, 1, 1, 3)) * 5)
                              + yy[None, :, :, None] / (4 + rng.random((n, 1, 1, 3)) * 5))
    return np.clip(base + rng.normal(0, 20, (n, h, w, 3)), 0, 255).astype(np.uint8)


def write_folder(path, imgs, fmt="png"):
    os.makedirs(path, exist_ok=True)
    for i, img in enumerate(imgs):
        Image.fromarray(img).save(os.path.join(path, f"{i:04d}.{fmt}"))
    return str(path)


def ours(state, resize, imgs):
    ext = InceptionExtractor(state_dict=state, resize=resize)
    pool3, logits = ext(torch.stack([ext.prepare(im) for im in imgs]).contiguous(memory_format=torch.channels_last))
    return pool3.numpy(), logits.numpy()


# ------------------------------------------------------------------------------------------ the network


def test_network_equals_pytorch_fid_inception(state):
    """pytorch-fid's InceptionV3([3]) (built from torchvision's modules, weights patched in) on [0, 1] images."""
    with real_torchvision():
        pfid = fresh_import("pytorch_fid.inception")
        pfid.load_state_dict_from_url = lambda *a, **k: state
        model = pfid.InceptionV3([3]).eval()
        import torchvision.transforms as T

        to_tensor = T.ToTensor()
        for k, size in enumerate(SIZES):
            imgs = images_of(size, 2, k)
            with torch.no_grad():
                theirs = model(torch.stack([to_tensor(im) for im in imgs]))[0].squeeze(-1).squeeze(-1).numpy()
            mine, _ = ours(state, "legacy_pytorch", imgs)
            assert rel(mine, theirs) < 1e-5, size
        # pytorch-fid's wrapper layout (blocks.N.M.*) loads too, pool3 only
        ext = InceptionExtractor(state_dict=model.state_dict(), resize="legacy_pytorch")
        assert not ext.has_logits
        imgs = images_of((64, 64), 2, 9)
        with torch.no_grad():
            theirs = model(torch.stack([to_tensor(im) for im in imgs]))[0].flatten(1).numpy()
        mine = ext(torch.stack([ext.prepare(im) for im in imgs]))[0].numpy()
        assert rel(mine, theirs) < 1e-5


def test_network_equals_torch_fidelity_inception(state, weights_file):
    """torch-fidelity's FeatureExtractorInceptionV3 on uint8 images: pool3 and the unbiased logits."""
    tfe = import_peer("torch_fidelity.feature_extractor_inceptionv3")
    fe = tfe.FeatureExtractorInceptionV3("inception-v3-compat", ["2048", "logits_unbiased"],
                                         feature_extractor_weights_path=weights_file)
    for k, size in enumerate(SIZES):
        imgs = images_of(size, 2, 10 + k)
        with torch.no_grad():
            pool3, logits = fe(torch.from_numpy(imgs).permute(0, 3, 1, 2).contiguous())
        mine_pool3, mine_logits = ours(state, "legacy_tensorflow", imgs)
        assert rel(mine_pool3, pool3) < 1e-5, size
        assert rel(mine_logits, logits) < 1e-5, size


def test_weights_layouts_and_refusals(state, tmp_path):
    mapped = inc.canonical_state_dict({"module." + k: v for k, v in state.items()}, "x")
    assert set(mapped) == {k for k in state if not k.endswith("num_batches_tracked")}
    bad = dict(state)
    bad["Mixed_5b.branch1x1.conv.weight"] = torch.zeros(3, 3)
    with pytest.raises(ValueError, match="Mixed_5b.branch1x1.conv.weight.*shape"):
        inc.build_network(bad, "bad.pth")
    with pytest.raises(ValueError, match="missing"):
        inc.build_network({k: v for k, v in state.items() if not k.startswith("Mixed_7c")}, "partial.pth")
    with pytest.raises(ValueError, match="unknown keys"):
        inc.build_network({**state, "extra.weight": torch.zeros(1)}, "extra.pth")
    # weights_only: a file that needs unpickling code is refused, not executed
    evil = tmp_path / "evil.pth"
    torch.save({"x": Exception("not a tensor")}, evil)
    with pytest.raises(ValueError, match="cannot be read as a PyTorch weights file"):
        inc.load_state(str(evil))


# ------------------------------------------------------------------------------------------ resizing


@pytest.mark.parametrize("size", SIZES)
def test_resize_conventions_equal_the_peers_functions(size):
    img = images_of(size, 1, 20)[0]
    tf1 = import_peer("torch_fidelity.interpolate_compat_tensorflow")
    x = torch.from_numpy(img).permute(2, 0, 1)[None].float()
    theirs = (tf1.interpolate_bilinear_2d_like_tensorflow1x(x, size=(299, 299), align_corners=False) - 128) / 128
    assert torch.equal(pre.preprocess(img, "legacy_tensorflow"), theirs[0])

    resize = import_peer("cleanfid.resize")
    theirs = torch.from_numpy(resize.make_resizer("PIL", False, "bicubic", (299, 299))(img)).permute(2, 0, 1)
    assert torch.equal(pre.preprocess(img, "clean"), (theirs - 128) / 128)

    with real_torchvision():
        import torchvision.transforms as T

        def theirs():
            return 2 * torch.nn.functional.interpolate(T.ToTensor()(img)[None], size=(299, 299), mode="bilinear",
                                                       align_corners=False)[0] - 1

        # torch's bilinear upsampling rounds by thread count: equal on one thread (ours always runs on one), within
        # a few roundings on several
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            assert torch.equal(pre.preprocess(img, "legacy_pytorch"), theirs())
        finally:
            torch.set_num_threads(threads)
        assert (pre.preprocess(img, "legacy_pytorch") - theirs()).abs().max() <= 1e-6


def test_resize_is_refused_unless_known():
    with pytest.raises(ValueError, match="resize must be one of"):
        pre.check_convention("bicubic")


# ------------------------------------------------------------------------------------------ end to end


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("images")
    a = write_folder(root / "a", images_of((64, 64), 12, 1))
    b = write_folder(root / "b", images_of((64, 64), 10, 2))
    return a, b


def test_folders_against_pytorch_fid(state, weights_file, folders, tmp_path):
    """pytorch-fid's own file listing, loader and network (random weights patched in): same activations, row
    for row, and the FID of those activations (exact float64 truth: n <= d here, where sqrtm is unreliable)."""
    a, b = folders
    with real_torchvision():
        score = fresh_import("pytorch_fid.fid_score")
        pfid = sys.modules["pytorch_fid.inception"]
        pfid.load_state_dict_from_url = lambda *a_, **k: state
        model = pfid.InceptionV3([3]).eval()
        acts = []
        for folder in (a, b):
            files = sorted(os.path.join(folder, f) for f in os.listdir(folder))
            acts.append(score.get_activations(files, model, batch_size=5, dims=2048, device="cpu", num_workers=0))
        their_fid = score.calculate_fid_given_paths([a, b], batch_size=5, device="cpu", dims=2048, num_workers=0)
    mine = [gm.extract(f, weights=weights_file, resize="legacy_pytorch", cache=False) for f in (a, b)]
    for m, t in zip(mine, acts):
        assert m.shape == t.shape and rel(m, t) < 1e-5
    truth, scale = frechet_truth(*acts)
    value = gm.fid(a, b, weights=weights_file, resize="legacy_pytorch", cache=False)
    assert abs(value - truth) < 1e-5 * scale
    assert abs(their_fid - truth) < 1e-3 * truth  # pytorch-fid's own number, as far as sqrtm gets at n < d


def test_folders_against_clean_fid_legacy_pytorch(state, weights_file, folders):
    a, b = folders
    with real_torchvision():
        cfid = fresh_import("cleanfid.fid")
        sys.modules["cleanfid.inception_pytorch"].load_state_dict_from_url = lambda *a_, **k: state
        feats = sys.modules["cleanfid.features"]
        model = feats.build_feature_extractor("legacy_pytorch", device=torch.device("cpu"), use_dataparallel=False)
        theirs, theirs_b = (cfid.get_folder_features(f, model, num_workers=0, batch_size=5, device=torch.device("cpu"),
                                                     mode="legacy_pytorch", verbose=False) for f in (a, b))
        their_fid = cfid.compute_fid(a, b, mode="legacy_pytorch", device=torch.device("cpu"), num_workers=0,
                                     use_dataparallel=False, verbose=False)
    mine = gm.extract(a, weights=weights_file, resize="legacy_pytorch", cache=False)
    assert rel(mine, theirs) < 1e-5
    truth, scale = frechet_truth(theirs, theirs_b)
    assert abs(gm.fid(a, b, weights=weights_file, resize="legacy_pytorch", cache=False) - truth) < 1e-5 * scale
    assert abs(their_fid - truth) < 1e-3 * truth  # clean-fid's own number, as far as sqrtm gets at n < d


def test_torchmetrics_image_batches_equal_frechet_inception_distance(state, weights_file):
    tm_fid = import_peer("torchmetrics.image.fid")
    from ganmetrics.torchmetrics import FrechetDistance

    theirs = tm_fid.FrechetInceptionDistance(feature=2048, feature_extractor_weights_path=weights_file)
    mine = FrechetDistance(2048, extractor="inception-v3", weights=weights_file)
    for k, real in ((0, True), (1, True), (2, False), (3, False)):
        batch = torch.from_numpy(images_of((128, 96), 6, 30 + k)).permute(0, 3, 1, 2).contiguous()
        theirs.update(batch, real=real)
        mine.update(batch, real=real)
    t, m = float(theirs.compute()), float(mine.compute())
    assert abs(m - t) < 1e-3 * t  # torchmetrics' float64 eigenvalue route at n < d; features agree to 1e-5
    with pytest.raises(ValueError, match="uint8"):
        mine.update(torch.rand(2, 3, 64, 64), real=True)


# ------------------------------------------------------------------------------------------ inputs


class Tiny(torch.nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(2),
                                       torch.nn.Flatten())

    def forward(self, x):
        return self.net(x)


@pytest.fixture(scope="module")
def tiny():
    return ModuleExtractor(Tiny(), "tiny-test-net")


def test_every_input_kind_gives_the_same_features(tiny, tmp_path):
    imgs = images_of((20, 24), 7, 3)
    ref = gm.extract(imgs, extractor=tiny, cache=False, workers=0)
    folder = write_folder(tmp_path / "f", imgs)
    zpath = tmp_path / "imgs.zip"
    with zipfile.ZipFile(zpath, "w") as zf:
        for i, img in enumerate(imgs):
            buf = io.BytesIO()
            Image.fromarray(img).save(buf, format="png")
            zf.writestr(f"sub/{i:04d}.png", buf.getvalue())
        zf.writestr("readme.txt", "not an image")
    np.savez(tmp_path / "batch.npz", arr_0=imgs)
    np.save(tmp_path / "batch.npy", imgs.transpose(0, 3, 1, 2))
    nchw = torch.from_numpy(imgs).permute(0, 3, 1, 2)

    class DS(torch.utils.data.Dataset):
        def __len__(self):
            return len(imgs)

        def __getitem__(self, i):
            return nchw[i].float() / 255, i  # (image, label), float CHW in [0, 1]

    for x in (folder, str(zpath), str(tmp_path / "batch.npz"), str(tmp_path / "batch.npy"), nchw, imgs / 255.0,
              DS(), torch.utils.data.DataLoader(DS(), batch_size=3)):
        got = gm.extract(x, extractor=tiny, cache=False, workers=0)
        np.testing.assert_array_equal(got, ref)
    np.testing.assert_array_equal(gm.extract(folder, extractor=tiny, cache=False, workers=2, batch_size=7), ref)


def test_every_metric_takes_images(tiny):
    a, b = images_of((16, 16), 40, 50), images_of((16, 16), 36, 51)
    fa, fb = (gm.extract(x, extractor=tiny, cache=False, workers=0) for x in (a, b))
    kw = {"extractor": tiny, "cache": False, "workers": 0}
    assert gm.cmmd(a, b, **kw) == gm.cmmd(fa, fb)
    assert gm.vendi(a, **kw) == gm.vendi(fa)
    prd_kw = {"num_clusters": 5, "num_runs": 2, "enforce_balance": False}
    assert gm.prd(a, b, **prd_kw, **kw).f8 == gm.prd(fa, fb, **prd_kw).f8
    assert gm.bootstrap(a, b, ["fid"], n_boot=4, **kw)["fid"] == gm.bootstrap(fa, fb, ["fid"], n_boot=4)["fid"]
    assert gm.nn1_accuracy(a, b, **kw).accuracy == gm.nn1_accuracy(fa, fb).accuracy
    assert list(gm.realism_score(a, b, **kw)) == list(gm.realism_score(fa, fb))


def test_peer_conversions_of_file_modes(tiny, tmp_path):
    """Grayscale, RGBA, palette and 16-bit files become RGB as PIL's convert('RGB') makes them (the peers' rule)."""
    rng = np.random.default_rng(5)
    rgb = rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)
    files = {
        "gray.png": Image.fromarray(rgb[:, :, 0]),
        "rgba.png": Image.fromarray(np.dstack([rgb, rng.integers(0, 256, (16, 16), dtype=np.uint8)])),
        "palette.png": Image.fromarray(rgb).convert("P"),
        "sixteen.png": Image.fromarray((rgb[:, :, 1].astype(np.uint16) * 3)),
        "photo.jpg": Image.fromarray(rgb),
    }
    for name, img in files.items():
        img.save(tmp_path / name)
    got = gm.extract(str(tmp_path), extractor=tiny, cache=False, workers=0)
    expect = np.stack([np.array(Image.open(tmp_path / n).convert("RGB")) for n in sorted(files)])
    np.testing.assert_array_equal(got, gm.extract(expect, extractor=tiny, cache=False, workers=0))


def test_generator_input(tiny):
    def G(z):
        return torch.tanh(z[:, :3, None, None].expand(-1, 3, 12, 12))

    def G_cond(z, c):
        return torch.tanh(z[:, :3, None, None] + c[:, None, None, None].float()).expand(-1, 3, 12, 12)

    seen: dict[int, list] = {3: [], 4: []}

    def recording(batch_size):
        def model(z):
            seen[batch_size].append(z.clone())
            return G(z)
        return model

    a = gm.extract(Generator(recording(3), num_samples=10, z_dim=4, batch_size=3, seed=1, output_range=(-1, 1)),
                   extractor=tiny)
    b = gm.extract(Generator(recording(4), num_samples=10, z_dim=4, batch_size=4, seed=1, output_range=(-1, 1)),
                   extractor=tiny)
    c = gm.extract(Generator(G, num_samples=10, z_dim=4, batch_size=3, seed=2, output_range=(-1, 1)), extractor=tiny)
    assert a.shape == (10, 32)
    # same seed, same latents whatever the batch size (features: to the network's batch-size rounding)
    assert torch.equal(torch.cat(seen[3]), torch.cat(seen[4]))
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)
    assert not np.allclose(a, c)
    d = gm.extract(Generator(G_cond, num_samples=5, z_dim=4, num_classes=3, output_range=(-1, 1)), extractor=tiny)
    assert d.shape == (5, 32)
    with pytest.raises(ValueError, match="4-D image batch"):
        gm.extract(Generator(lambda z: z, num_samples=2, z_dim=4), extractor=tiny)
    with pytest.raises(ValueError, match="num_samples"):
        Generator(G, num_samples=0, z_dim=4)


def test_bad_image_inputs(tiny, tmp_path):
    imgs = images_of((16, 16), 4, 7)
    folder = write_folder(tmp_path / "f", imgs)
    (tmp_path / "f" / "0001.png").write_bytes(b"this is not a png")
    data = (tmp_path / "f" / "0002.png").read_bytes()
    (tmp_path / "f" / "0002.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="0001.png: cannot be read as an image"):
        gm.extract(folder, extractor=tiny, cache=False, workers=0)
    got = extraction.run(gm.images.as_source(folder, "x"), tiny, cache=False, skip_bad=True, workers=1)
    assert got.n == 2 and len(got.skipped) == 2
    np.testing.assert_array_equal(got.features, gm.extract(imgs[[0, 3]], extractor=tiny, cache=False))
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="holds no images"):
        gm.extract(str(tmp_path / "empty"), extractor=tiny)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        gm.extract(np.full((2, 3, 8, 8), 2.0), extractor=tiny)
    with pytest.raises(ValueError, match="1 or 3 channels"):
        gm.extract(np.zeros((2, 5, 8, 8), np.uint8), extractor=tiny)
    with pytest.raises(ValueError, match="apply to image inputs"):
        gm.fid(np.zeros((3, 4)), np.ones((3, 4)), resize="clean")
    with pytest.raises(ValueError, match="device must be"):
        gm.extract(imgs, extractor=tiny, device="gpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="sees no CUDA device"):
            gm.extract(imgs, extractor="digits", device="cuda")


# ------------------------------------------------------------------------------------------ cache


def test_cache_hit_invalidation_and_layout(tiny, tmp_path):
    imgs = images_of((16, 16), 5, 8)
    folder = write_folder(tmp_path / "f", imgs)
    cache = str(tmp_path / "cache")
    src = gm.images.as_source(folder, "x")
    first = extraction.run(src, tiny, cache_dir=cache, workers=0)
    assert not first.from_cache and first.cache_path.startswith(cache)
    again = extraction.run(gm.images.as_source(folder, "x"), tiny, cache_dir=cache, workers=0)
    assert again.from_cache
    np.testing.assert_array_equal(again.features, first.features)
    assert isinstance(again.features, np.memmap)
    meta = json.load(open(first.cache_path[:-4] + ".json"))
    assert meta["n"] == 5 and meta["extractor"] == "tiny-test-net"
    # a changed file (content and modification time) is a different input
    Image.fromarray(255 - imgs[2]).save(os.path.join(folder, "0002.png"))
    os.utime(os.path.join(folder, "0002.png"), ns=(time.time_ns(), time.time_ns() + 10**9))
    changed = extraction.run(gm.images.as_source(folder, "x"), tiny, cache_dir=cache, workers=0)
    assert not changed.from_cache
    assert not np.array_equal(changed.features[2], first.features[2])
    np.testing.assert_array_equal(changed.features[[0, 1, 3, 4]], first.features[[0, 1, 3, 4]])
    # another extractor identity (e.g. another resize or weights) is another entry
    other = ModuleExtractor(Tiny(), "tiny-test-net-v2")
    assert not extraction.run(gm.images.as_source(folder, "x"), other, cache_dir=cache, workers=0).from_cache
    before = sorted(os.listdir(cache))
    extraction.run(gm.images.as_source(folder, "x"), tiny, cache=False, workers=0)
    assert sorted(os.listdir(cache)) == before


def test_inception_cache_key_follows_weights_and_resize(state, tmp_path):
    a = InceptionExtractor(state_dict=state, resize="clean")
    b = InceptionExtractor(state_dict=state, resize="legacy_tensorflow")
    other = dict(state)
    other["fc.bias"] = other["fc.bias"] + 1
    c = InceptionExtractor(state_dict=other, resize="clean")
    assert len({a.identity, b.identity, c.identity}) == 3
    assert a.name == "inception-v3-tf-2015-12-05:pool3:clean"


SLOW_EXTRACTOR = """
import time, torch
class Slow(torch.nn.Module):
    input_size = (8, 8)
    def forward(self, x):
        time.sleep(float(__import__("os").environ.get("SLOW_S", "0")))
        return x.mean(dim=(2, 3))
"""


def _cli(*args, env=None, **kw):
    return subprocess.run([sys.executable, "-m", "ganmetrics", *args], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=240, **kw)


def test_concurrent_runs_share_a_cache_and_an_interrupted_run_leaves_no_entry(tmp_path):
    imgs = images_of((8, 8), 40, 9)
    folder = write_folder(tmp_path / "f", imgs)
    (tmp_path / "slow.py").write_text(SLOW_EXTRACTOR)
    cache = str(tmp_path / "cache")
    spec = f"{tmp_path / 'slow.py'}:Slow"
    args = ["stats", folder, "--extractor", spec, "--cache-dir", cache, "--workers", "0", "--batch-size", "4", "--json"]
    # interrupted: killed in the middle of the extraction
    proc = subprocess.Popen([sys.executable, "-m", "ganmetrics", *args, "-o", str(tmp_path / "k.npz")],
                            env={**os.environ, "SLOW_S": "0.5"}, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.time() + 60
    while time.time() < deadline and not (os.path.isdir(cache) and any(n.endswith(".tmp") for n in os.listdir(cache))):
        time.sleep(0.05)
    proc.kill()
    proc.wait()
    assert not any(n.endswith(".json") for n in os.listdir(cache))
    assert not (tmp_path / "k.npz").exists()
    # two at once, then the entry they wrote serves a third
    procs = [subprocess.Popen([sys.executable, "-m", "ganmetrics", *args, "-o", str(tmp_path / f"s{i}.npz")],
                              env={**os.environ, "SLOW_S": "0.05"}, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for i in range(2)]
    outs = [p.communicate(timeout=240) for p in procs]
    assert all(p.returncode == 0 for p in procs), outs
    entries = [n for n in os.listdir(cache) if n.endswith(".json")]
    assert len(entries) == 1
    assert not any(n.endswith(".tmp") for n in os.listdir(cache))  # the killed run's temporary files swept
    s0, s1 = (gm.FeatureStats.load(str(tmp_path / f"s{i}.npz")) for i in range(2))
    np.testing.assert_array_equal(s0.mean, s1.mean)
    feats = np.load(os.path.join(cache, entries[0][:-5] + ".npy"))
    np.testing.assert_allclose(feats, imgs.mean(axis=(1, 2)) / 255, rtol=1e-6)


# ------------------------------------------------------------------------------------------ weights lookup


@pytest.fixture
def known_weights(weights_file, monkeypatch, tmp_path):
    """A WeightsFile entry whose name carries the random file's own hash prefix (the real one's cannot be made)."""
    digest = hashlib.sha256(open(weights_file, "rb").read()).hexdigest()
    wf = inc.WeightsFile(f"test_inception-{digest[:8]}.pth", "https://example.invalid/test_inception.pth", "test")
    monkeypatch.setattr(inc, "WEIGHTS_FILES", (wf,))
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    monkeypatch.delenv(inc.WEIGHTS_ENV, raising=False)
    return wf, digest


def test_weights_lookup_order(weights_file, known_weights, monkeypatch, tmp_path):
    wf, digest = known_weights
    hub = tmp_path / "hub" / "checkpoints"
    hub.mkdir(parents=True)
    (hub / wf.filename).write_bytes(open(weights_file, "rb").read())
    assert inc.locate_weights(download=False) == (str(hub / wf.filename), digest)
    env_dir = tmp_path / "env"
    env_dir.mkdir()
    (env_dir / wf.filename).write_bytes(open(weights_file, "rb").read())
    monkeypatch.setenv(inc.WEIGHTS_ENV, str(env_dir))
    assert inc.locate_weights(download=False)[0] == str(env_dir / wf.filename)
    explicit = inc.locate_weights(weights_file)
    assert explicit == (weights_file, digest)


def test_weights_hash_mismatch_and_missing(weights_file, known_weights, monkeypatch, tmp_path):
    wf, _ = known_weights
    hub = tmp_path / "hub" / "checkpoints"
    hub.mkdir(parents=True)
    (hub / wf.filename).write_bytes(b"damaged" + open(weights_file, "rb").read())
    with pytest.raises(ValueError, match="SHA-256 .* does not start with"):
        inc.locate_weights(download=False)
    (hub / wf.filename).unlink()
    with pytest.raises(FileNotFoundError) as err:
        inc.locate_weights(download=False)
    assert wf.filename in str(err.value) and wf.url in str(err.value) and inc.WEIGHTS_ENV in str(err.value)
    with pytest.raises(FileNotFoundError, match="weights: no such file"):
        inc.locate_weights(tmp_path / "nope.pth")


def test_weights_download_is_verified_before_it_lands(weights_file, known_weights, monkeypatch, tmp_path):
    wf, digest = known_weights
    payload = {"bytes": open(weights_file, "rb").read()}

    def fake_download(url, dst, progress=True):
        assert url == wf.url
        open(dst, "wb").write(payload["bytes"])

    monkeypatch.setattr(torch.hub, "download_url_to_file", fake_download)
    payload["bytes"] = b"truncated"
    with pytest.raises(ValueError, match="does not start with"):
        inc.locate_weights()
    folder = tmp_path / "hub" / "checkpoints"
    assert os.listdir(folder) == []  # nothing partial left
    payload["bytes"] = open(weights_file, "rb").read()
    assert inc.locate_weights() == (str(folder / wf.filename), digest)

    def offline(url, dst, progress=True):
        raise OSError("network is unreachable")

    (folder / wf.filename).unlink()
    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    with pytest.raises(FileNotFoundError, match="the download failed"):
        inc.locate_weights()


# ------------------------------------------------------------------------------------------ CLI and API


def test_cli_images_stats_files_and_conventions(weights_file, folders, tmp_path):
    a, b = folders
    cache = str(tmp_path / "cache")
    base = ["--weights", weights_file, "--cache-dir", cache, "--json"]
    direct = json.loads(_cli("fid", a, b, *base).stdout)
    api = gm.fid(a, b, weights=weights_file, cache_dir=cache)
    assert direct["fid"] == pytest.approx(api, rel=1e-12)
    assert direct["extractor"] == "inception-v3-tf-2015-12-05:pool3:legacy_tensorflow"
    out = _cli("stats", a, "-o", str(tmp_path / "a.npz"), *base)
    assert out.returncode == 0, out.stderr
    via_stats = json.loads(_cli("fid", str(tmp_path / "a.npz"), b, *base).stdout)
    assert via_stats["fid"] == pytest.approx(direct["fid"], rel=1e-12)
    clash = _cli("fid", str(tmp_path / "a.npz"), b, *base, "--resize", "clean")
    assert clash.returncode == 2 and "resize='legacy_tensorflow'" in clash.stderr and "--force" in clash.stderr
    kid = json.loads(_cli("kid", a, b, *base).stdout)
    assert kid["kid"] == pytest.approx(gm.kid(a, b, weights=weights_file, cache_dir=cache).mean, rel=1e-12)
    prdc = json.loads(_cli("prdc", a, b, "--k", "3", *base).stdout)
    assert prdc["precision"] == gm.prdc(a, b, k=3, weights=weights_file, cache_dir=cache)["precision"]
    feats = tmp_path / "f.npy"
    np.save(feats, np.random.default_rng(0).normal(size=(20, 8)))
    wrong = _cli("fid", str(feats), str(feats), "--resize", "clean")
    assert wrong.returncode == 2 and "--resize applies to image inputs" in wrong.stderr
    missing = _cli("fid", str(tmp_path / "none"), b)
    assert missing.returncode == 2 and "no such file or folder" in missing.stderr


def test_inception_score_from_images(weights_file, folders):
    a, _ = folders
    feats, logits = gm.extract(a, weights=weights_file, return_logits=True, cache=False)
    assert feats.shape == (12, 2048) and logits.shape == (12, 1008)
    score = gm.inception_score(a, splits=2, weights=weights_file, cache=False)
    assert score.mean == pytest.approx(gm.inception_score(logits, splits=2).mean, rel=1e-12)


def test_compat_functions_on_folders(state, weights_file, folders, known_weights, monkeypatch, tmp_path):
    a, b = folders
    wf, _ = known_weights
    hub = tmp_path / "hub" / "checkpoints"
    hub.mkdir(parents=True)
    (hub / wf.filename).write_bytes(open(weights_file, "rb").read())
    monkeypatch.setenv(extraction.CACHE_ENV, str(tmp_path / "cache"))
    from ganmetrics.compat import clean_fid, pytorch_fid, torch_fidelity

    legacy_pt = gm.fid(a, b, weights=weights_file, resize="legacy_pytorch")
    assert pytorch_fid.calculate_fid_given_paths([a, b], 5, "cpu", 2048, 0) == pytest.approx(legacy_pt, rel=1e-12)
    assert clean_fid.compute_fid(a, b, mode="legacy_pytorch", device=torch.device("cpu"), num_workers=0) \
        == pytest.approx(legacy_pt, rel=1e-12)
    clean = gm.fid(a, b, weights=weights_file, resize="clean")
    assert clean_fid.compute_fid(a, b, num_workers=0) == pytest.approx(clean, rel=1e-12)
    res = torch_fidelity.calculate_metrics(input1=b, input2=a, fid=True, isc=True, isc_splits=2,
                                           feature_extractor_weights_path=weights_file)
    assert res["frechet_inception_distance"] == pytest.approx(gm.fid(a, b, weights=weights_file), rel=1e-12)
    assert res["inception_score_mean"] > 1


# ------------------------------------------------------------------------------------------ CLIP and DINOv2


def _optional(module: str):
    import importlib.util

    if importlib.util.find_spec(module) is None:
        pytest.skip(f"{module} is not installed (the `test` extra installs it)")


def test_clip_extractor_equals_open_clips_own_use(tmp_path):
    """Random ViT-B/32 weights saved to a file: our extractor equals open_clip's documented image embedding."""
    _optional("open_clip")
    imgs = images_of((48, 40), 2, 40)
    with real_torchvision():
        open_clip = fresh_import("open_clip")
        torch.manual_seed(0)
        model, _, preprocess = open_clip.create_model_and_transforms("ViT-B-32", pretrained=None)
        model.eval()
        torch.save(model.state_dict(), tmp_path / "clip.bin")
        with torch.no_grad():
            theirs = model.encode_image(torch.stack([preprocess(Image.fromarray(im)) for im in imgs])).numpy()
        ext = gm.extractors.get_extractor("clip-vit-b-32", weights=tmp_path / "clip.bin")
        mine = gm.extract(imgs, extractor=ext, workers=0)
    assert ext.name == "clip-vit-b-32:openai" and mine.shape == (2, 512)
    assert rel(mine, theirs) < 1e-5
    with pytest.raises(ValueError, match="resize applies to the inception-v3 extractor"):
        gm.extractors.get_extractor("clip-vit-b-32", resize="clean")


def test_dinov2_extractor_equals_timm_with_dgm_eval_preprocessing(tmp_path):
    _optional("timm")
    imgs = images_of((64, 80), 2, 41)
    with real_torchvision():
        timm = fresh_import("timm")
        torch.manual_seed(0)
        model = timm.create_model("vit_large_patch14_dinov2.lvd142m", pretrained=False, img_size=224,
                                  num_classes=0).eval()
        torch.save(model.state_dict(), tmp_path / "dinov2.pth")
        x = torch.stack([torch.from_numpy(np.asarray(Image.fromarray(im).resize((224, 224), Image.BICUBIC),
                                                     dtype=np.float32) / 255).permute(2, 0, 1) for im in imgs])
        x = (x - torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)) / torch.tensor([0.229, 0.224, 0.225]).view(
            1, 3, 1, 1)
        with torch.no_grad():
            theirs = model(x).numpy()
        ext = gm.extractors.get_extractor("dinov2-vit-l-14", weights=tmp_path / "dinov2.pth")
        mine = gm.extract(imgs, extractor=ext, workers=0)
    assert ext.name == "dinov2-vit-l-14:lvd142m" and mine.shape == (2, 1024)
    assert rel(mine, theirs) < 1e-5


def test_foundation_weights_errors(tmp_path, monkeypatch):
    from ganmetrics.extractors import foundation

    monkeypatch.setenv(inc.WEIGHTS_ENV, str(tmp_path))
    spec = foundation.MODELS["dinov2-vit-l-14"]
    assert foundation._local_file(spec, None) is None or "checkpoints" in foundation._local_file(spec, None)
    (tmp_path / spec.filename).write_bytes(b"x")
    assert foundation._local_file(spec, None) == str(tmp_path / spec.filename)
    with pytest.raises(ValueError, match="cannot be read as a weights file"):
        foundation.read_state(str(tmp_path / spec.filename))
    err = foundation._missing(spec, OSError("offline"))
    assert spec.filename in str(err) and spec.url in str(err) and inc.WEIGHTS_ENV in str(err)
    with pytest.raises(FileNotFoundError, match="weights: no such file"):
        foundation._local_file(spec, tmp_path / "none.pth")
