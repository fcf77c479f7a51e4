"""Rewrite the README's result tables from benchmarks/results/*.json (python benchmarks/readme_table.py)."""

import json
import os

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESULTS = os.path.join(ROOT, "benchmarks", "results")


def load():
    rows = {}
    for name in sorted(os.listdir(RESULTS)):
        if name.endswith("_cpu.json") and name != "torch_engine_cpu.json":  # that one has a table of its own
            with open(os.path.join(RESULTS, name)) as fh:
                for r in json.load(fh).get("rows", []):  # other result files (streaming) have no rows
                    if "median_s" in r:
                        rows[(r["name"], r["n"])] = r
    return rows


def table(rows) -> str:
    def t(name, n):
        return rows[(name, n)]["median_s"]

    def m(name, n):
        return rows[(name, n)]["peak_mb_beyond_inputs"]

    out = ["| task | ganmetrics | alternative | alternative's time | speed-up |", "|---|---|---|---|---|"]

    def add(task, ours, alt_name, alt_label, n, unit_fmt="{:.2f} s"):
        if (alt_name, n) not in rows:
            return
        g = t(ours, n)
        left = f"{task} | {unit_fmt.format(g)}" if task else " | "
        out.append(f"| {left} | {alt_label} | {unit_fmt.format(t(alt_name, n))} | {t(alt_name, n) / g:.1f}× |")

    if ("fd/ganmetrics", 10000) in rows:
        add("Fréchet distance, d = 2048, from statistics", "fd/ganmetrics", "fd/scipy-sqrtm (pytorch-fid, clean-fid)",
            "scipy `sqrtm` route (pytorch-fid, clean-fid)", 10000)
        add("", "fd/ganmetrics", "fd/torch-eigvals (torchmetrics, torch-fidelity)",
            "torch `eigvals` route (torchmetrics, torch-fidelity)", 10000)
    for n in (10000, 50000):
        if ("cov/ganmetrics", n) in rows:
            add(f"covariance of {n:,} × 2048 float32", "cov/ganmetrics", "cov/np.cov", "`np.cov`", n)
            add("", "cov/ganmetrics", "cov/torch-float64", "torch float64 sums", n)
    for n in (10000, 20000, 50000):
        if ("prdc/ganmetrics", n) in rows:
            task = f"PRDC, k = 5, {n:,} vs {n:,}, d = 2048 (+{m('prdc/ganmetrics', n):.0f} MB)"
            if ("prdc/prdc-package", n) in rows:
                add(task, "prdc/ganmetrics", "prdc/prdc-package", f"`prdc` package (+{m('prdc/prdc-package', n):.0f} MB)",
                    n, "{:.1f} s")
                task = ""
            if ("prdc/torch-cdist-float32", n) in rows:
                add(task, "prdc/ganmetrics", "prdc/torch-cdist-float32",
                    f"torch.cdist + kthvalue, float32 (+{m('prdc/torch-cdist-float32', n):.0f} MB)", n, "{:.1f} s")
                task = ""
            if ("radius/faiss-IndexFlatL2", n) in rows:
                out.append(f"| {task or ' | '}{' | ' + format(t('prdc/ganmetrics', n), '.1f') + ' s' if task else ''} | "
                           f"faiss `IndexFlatL2`, real radius pass only (1 of PRDC's 3 passes) | "
                           f"{t('radius/faiss-IndexFlatL2', n):.1f} s | — |")
            elif task:
                out.append(f"| {task} | {t('prdc/ganmetrics', n):.1f} s | (no contender: prdc would need ~30 GB) | | |")
    if ("collapse/ganmetrics-collapsed", 20000) in rows:
        c, nrm = "collapse/ganmetrics-collapsed", "collapse/ganmetrics-normal"
        out.append(f"| PRDC, k = 5, 20,000 vs 20,000, d = 2048, fake set fully collapsed (+{m(c, 20000):.0f} MB) | "
                   f"{t(c, 20000):.1f} s | the same with a normal fake set (+{m(nrm, 20000):.0f} MB) | "
                   f"{t(nrm, 20000):.1f} s | {t(nrm, 20000) / t(c, 20000):.1f}× |")
    for ours, label in (("kid/ganmetrics", "KID, 100 subsets × 1000, 10,000 × 2048"),
                        ("kid/ganmetrics-float32", "KID, same, `precision=\"float32\"`")):
        if (ours, 10000) not in rows:
            continue
        for alt, alt_label in (("kid/torch-fidelity", "torch-fidelity (float32 numpy)"),
                               ("kid/torchmetrics", "torchmetrics `poly_mmd` loop (float32)")):
            add(label if alt == "kid/torch-fidelity" else "", ours, alt, alt_label, 10000, "{:.1f} s")
    for ours, label in (("kidfull/ganmetrics", "KID over the full sets, 10,000 vs 10,000 × 2048"),
                        ("kidfull/ganmetrics-float32", "KID over the full sets, `precision=\"float32\"`")):
        if (ours, 10000) in rows:
            add(label, ours, "kidfull/torchmetrics-poly_mmd", "torchmetrics `poly_mmd` on the full sets (float32)",
                10000, "{:.1f} s")
    for ours, label in (("cmmd/ganmetrics", "CMMD, 10,000 vs 10,000 × 2048"),
                        ("cmmd/ganmetrics-float32", "CMMD, `precision=\"float32\"`")):
        if (ours, 10000) in rows:
            add(label, ours, "cmmd/torch-float32 (paper's estimator)", "the paper's estimator in torch float32",
                10000, "{:.1f} s")
    if ("fdinf/ganmetrics", 10000) in rows:
        add("FD∞, 15 sizes, 10,000 × 2048", "fdinf/ganmetrics", "fdinf/15-independent-fids", "15 independent FIDs",
            10000, "{:.1f} s")
    for label, what in (("fid+prdc", "FID + PRDC"), ("prdc", "PRDC"), ("fid", "FID")):
        one, values = f"intervals/{label}/one-pass", f"intervals/{label}/values"
        if (one, 10000) in rows and (values, 10000) in rows:
            ratio = t(one, 10000) / t(values, 10000)
            task = (f"`evaluate_many`, {what} with 95 % intervals (50 rounds), one generator of 10,000 × 2048 "
                    f"({ratio:.2f}× the values alone, {t(values, 10000):.1f} s)")
            if (f"intervals/{label}/recomputed", 10000) in rows:
                add(task, one, f"intervals/{label}/recomputed", "every round recomputed (the previous implementation)",
                    10000, "{:.1f} s")
            else:
                out.append(f"| {task} | {t(one, 10000):.1f} s | | | |")
    if ("intervals/bootstrap-prdc/one-pass", 10000) in rows:
        one, values = "intervals/bootstrap-prdc/one-pass", "intervals/bootstrap-prdc/values"
        out.append(f"| `gm.bootstrap` of precision, recall, density, coverage (50 rounds, both sets resampled), "
                   f"10,000 vs 10,000 × 2048 ({t(one, 10000) / t(values, 10000):.2f}× one `gm.prdc`, "
                   f"{t(values, 10000):.1f} s) | {t(one, 10000):.1f} s | | | |")
    return "\n".join(out)


def _rows_of(name: str) -> list[dict]:
    with open(os.path.join(RESULTS, name)) as fh:
        return json.load(fh)["rows"]


def extract_table() -> str:
    """Images per second from PNG folders to pool3 (benchmarks/extract_images.py)."""
    out = ["| images (PNG, 1,000 per run) | ganmetrics | peer, same numerics | peer | speed-up | features agree to |",
           "|---|---|---|---|---|---|"]
    for row in _rows_of("extract_cpu.json"):
        for peer, ours in (("pytorch-fid", "ganmetrics:legacy_pytorch"),
                           ("torch-fidelity", "ganmetrics:legacy_tensorflow")):
            cmp = row[f"{ours} vs {peer}"]
            out.append(f"| {row['size']} × {row['size']}, `resize=\"{ours.split(':')[1]}\"` | "
                       f"{row[ours]['images_per_s']:.1f} img/s | {peer} | {row[peer]['images_per_s']:.1f} img/s | "
                       f"{cmp['speedup']:.2f}× | {cmp['max_rel_diff']:.0e} |")
    return "\n".join(out)


def distributed_table() -> str:
    """PRDC over P ranks against the scaling model (benchmarks/distributed_prdc.py)."""
    out = ["| ranks | time | GEMM flops per rank (model) | bytes sent per rank (measured; model) | peak memory per rank |",
           "|---|---|---|---|---|"]
    for row in _rows_of("distributed_cpu.json"):
        flops = row["model"]["gemm_flops_per_rank"]
        sent = f"{row['bytes_sent_per_rank'] / 1e6:.1f} MB; {row['model']['bytes_per_rank'] / 1e6:.1f} MB"
        out.append(f"| {row['procs']} | {row['seconds']:.1f} s | {flops / 1e12:.2f}·10¹² | "
                   f"{sent if row['procs'] > 1 else '0'} | {row['peak_rss_mb_per_rank']:.0f} MB "
                   f"({row['rss_before_mb_per_rank']:.0f} MB before the metric) |")
    return "\n".join(out)


def engines_table() -> str:
    """The torch engine on CPU tensors beside the host engine, same run (benchmarks/compare.py engines)."""
    rows = {(r["name"], r["n"]): r for r in _rows_of("torch_engine_cpu.json") if "median_s" in r}
    out = ["| task | host engine | torch engine (CPU tensors) | torch / host |", "|---|---|---|---|"]
    for task, host, torch_name in (("covariance of {n:,} × 2048 float32", "cov/ganmetrics", "cov/ganmetrics-torch-engine-cpu"),
                                   ("PRDC, k = 5, {n:,} vs {n:,}, d = 2048", "prdc/ganmetrics",
                                    "prdc/ganmetrics-torch-engine-cpu"),
                                   ("KID, 100 subsets × 1000, {n:,} × 2048", "kid/ganmetrics",
                                    "kid/ganmetrics-torch-engine-cpu")):
        for (name, n), r in sorted(rows.items()):
            if name == host and (torch_name, n) in rows:
                t = rows[(torch_name, n)]
                out.append(f"| {task.format(n=n)} | {r['median_s']:.1f} s (+{r['peak_mb_beyond_inputs']:.0f} MB) | "
                           f"{t['median_s']:.1f} s (+{t['peak_mb_beyond_inputs']:.0f} MB) | "
                           f"{t['median_s'] / r['median_s']:.1f}× |")
    return "\n".join(out)


def _replace(text: str, tag: str, body: str) -> str:
    a = text.index(f"<!-- {tag}:start -->") + len(f"<!-- {tag}:start -->")
    b = text.index(f"<!-- {tag}:end -->")
    return text[:a] + "\n" + body + "\n" + text[b:]


def main():
    path = os.path.join(ROOT, "README.md")
    with open(path) as fh:
        text = fh.read()
    text = _replace(text, "bench", table(load()))
    if "<!-- extract:start -->" in text:
        text = _replace(text, "extract", extract_table())
    if "<!-- distributed:start -->" in text:
        text = _replace(text, "distributed", distributed_table())
    if "<!-- engines:start -->" in text and os.path.exists(os.path.join(RESULTS, "torch_engine_cpu.json")):
        text = _replace(text, "engines", engines_table())
    with open(path + ".tmp", "w") as fh:
        fh.write(text)
    os.replace(path + ".tmp", path)


if __name__ == "__main__":
    main()
