"""Soak check of ``gmvae predict``: thousands of image files with damaged ones mixed in.

Writes ``--files`` 8x8 digit images (PNG, JPEG, BMP, TIFF; nested folders) of which every
``--bad-every``-th is damaged in one of several ways (zero bytes, truncated, random bytes,
a text file, a PNG declaring 10^10 pixels, a TIFF with a flipped byte: bad when the
decoder cannot read it), trains a tiny model
on the digits, runs ``gmvae predict`` on the folder in a subprocess, and checks that every
good file has exactly one row, that the warning counts every bad file, and that the peak
memory stays bounded: a run on ``--files`` and one on a fifth of them may differ by at most
``--max-growth-mb``. Ends with one JSON line; exit status 1 when a check fails.

    python bench/predict_soak.py                   # 10,000 files, 1 in 50 damaged
    python bench/predict_soak.py --files 2000 --work /tmp/soak
"""

from __future__ import annotations

import argparse
import io
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image
from sklearn.datasets import load_digits

FORMATS = ("PNG", "JPEG", "BMP", "TIFF")
DAMAGE = ("zero-byte", "truncated", "random", "text", "huge", "flipped-tiff")


def _encode(pixels: np.ndarray, fmt: str) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format=fmt)
    return buffer.getvalue()


def _damaged(kind: str, good: bytes, rng: np.random.Generator) -> bytes:
    if kind == "zero-byte":
        return b""
    if kind == "truncated":
        return good[: max(1, len(good) // 3)]
    if kind == "random":
        return rng.integers(0, 256, 200, dtype=np.uint8).tobytes()
    if kind == "text":
        return "no image here, \u00e9t\u00e9 2024\n".encode("utf-16")
    if kind == "huge":  # a PNG header declaring 100000 x 100000 pixels and no data
        return bytes.fromhex("89504e470d0a1a0a0000000d49484452000186a0000186a00800000000b58d5ddb")
    tiff = bytearray(_encode(np.zeros((8, 8), np.uint8), "TIFF"))
    tiff[int(rng.integers(8, len(tiff)))] ^= 0xFF
    return bytes(tiff)


def _readable(path: Path) -> bool:
    from gmvae.data.images import decode_image

    try:
        decode_image(path, 8, 1)
    except ValueError:
        return False
    return True


def write_files(root: Path, n: int, bad_every: int, seed: int = 0) -> tuple[set[str], set[str]]:
    """``n`` files under ``root`` (100 per folder); returns (good paths, bad paths)."""
    digits = (load_digits().images * 255 / 16).round().astype(np.uint8)
    rng = np.random.default_rng(seed)
    good, bad = set(), set()
    for i in range(n):
        fmt = FORMATS[i % len(FORMATS)]
        path = root / f"batch{i // 100:03d}" / f"img{i:05d}.{fmt.lower()}"
        path.parent.mkdir(parents=True, exist_ok=True)
        data = _encode(digits[i % len(digits)], fmt)
        kind = DAMAGE[(i // bad_every) % len(DAMAGE)] if bad_every else None
        damaged = bad_every and i % bad_every == bad_every - 1
        if damaged:
            data = _damaged(kind, data, rng)
        path.write_bytes(data)
        # A flipped byte may hit pixels only: the TIFF then still reads, as the decoder says.
        if damaged and (kind != "flipped-tiff" or not _readable(path)):
            bad.add(str(path))
        else:
            good.add(str(path))
    return good, bad


def tiny_model(folder: Path) -> Path:
    from gmvae.estimator import GMVAEClassifier

    digits = load_digits()
    x = (digits.images * 255 / 16).round().astype(np.uint8)
    y = np.where(np.arange(len(x)) < 200, digits.target, -1)
    clf = GMVAEClassifier(
        feature_size=16, latent_size=8, mlp_hidden_size=32, knn_k=3, max_epochs=1, random_state=0
    )
    return clf.fit(x[:600], y[:600]).save(folder / "tiny.safetensors")


def predict(model: Path, root: Path, out: Path) -> dict:
    """Run ``gmvae predict`` in a child process; its peak RSS (MiB), time, rows, warning."""
    script = (
        "import resource, sys, runpy; sys.argv = ['gmvae'] + sys.argv[1:]\n"
        "try:\n    runpy.run_module('gmvae', run_name='__main__')\n"
        "finally:\n"
        "    print('peak_kib', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)\n"
    )
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", script, "predict", str(model), str(root), "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=3600,
    )
    seconds = time.perf_counter() - start
    peak = re.search(r"peak_kib (\d+)", done.stderr)
    rows = out.read_text().splitlines()[1:] if out.is_file() else []
    skipped = re.search(r"skipped (\d+) file\(s\)", done.stderr)
    return {
        "returncode": done.returncode,
        "seconds": round(seconds, 2),
        "peak_mib": round(int(peak.group(1)) / 1024, 1) if peak else None,
        "files": {line.split(",", 1)[0] for line in rows},
        "rows": len(rows),
        "skipped": int(skipped.group(1)) if skipped else 0,
        "stderr_tail": done.stderr[-2000:],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--files", type=int, default=10_000)
    parser.add_argument("--bad-every", type=int, default=50)
    parser.add_argument("--max-growth-mb", type=float, default=64.0)
    parser.add_argument("--work", type=Path, help="working folder (default: a temporary one)")
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="predict-soak-"))
    work.mkdir(parents=True, exist_ok=True)
    model = tiny_model(work)
    report: dict = {"files": args.files, "bad_every": args.bad_every}
    failures = []
    for label, n in (("small", max(1, args.files // 5)), ("full", args.files)):
        root = work / label
        good, bad = write_files(root, n, args.bad_every)
        run = predict(model, root, work / f"{label}.csv")
        if run["returncode"] != 0:
            failures.append(f"{label}: exit status {run['returncode']}: {run['stderr_tail']}")
        if run["files"] != good or run["rows"] != len(good):
            failures.append(
                f"{label}: {len(good - run['files'])} good files without a row, "
                f"{run['rows'] - len(run['files'] & good)} rows that are not good files"
            )
        if run["skipped"] != len(bad):
            failures.append(f"{label}: the warning counts {run['skipped']} of {len(bad)} bad files")
        report[label] = {
            k: run[k] for k in ("returncode", "seconds", "peak_mib", "rows", "skipped")
        } | {"good": len(good), "bad": len(bad)}
    small, full = report["small"]["peak_mib"], report["full"]["peak_mib"]
    if small is not None and full is not None and full - small > args.max_growth_mb:
        failures.append(f"peak memory grew by {full - small:.1f} MiB from small to full")
    report["failures"] = failures
    print(json.dumps(report))
    return 1 if failures else 0


if __name__ == "__main__":
    os.environ.setdefault("MPLBACKEND", "Agg")
    raise SystemExit(main())
