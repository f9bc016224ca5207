"""How far our numbers move across CPU kernels: the measurement behind every tolerance in the tests.

PyTorch picks its CPU kernels from ``ATEN_CPU_CAPABILITY`` (default, avx2, avx512) and oneDNN from
``ONEDNN_MAX_CPU_ISA``; a learner's laptop (or an Intel machine with AVX-512) runs other kernels than ours. This
script recomputes everything the golden, runtime and quick-suite tests compare (``tests/test_golden.py --measure``)
once per setting, each in a fresh process, and writes, per recorded quantity, the largest difference between any
two settings and between any setting and ``tests/golden/golden.pt``, in the unit of that quantity's tolerance
(``tests/test_golden.TOLERANCES``). ``benchmarks/results/kernel_spread.{json,md}``.

    python -m saliency_research.bench.kernel_spread                 # every setting (about 1-2 min each on one thread)
    python -m saliency_research.bench.kernel_spread --settings native default
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests"))

from test_golden import GOLDEN, difference, pattern_of, tolerance  # noqa: E402
from test_runtime import RUNTIME_TOLERANCES  # noqa: E402

from saliency_lib.io import paths  # noqa: E402

RESULTS = paths.RESULTS_DIR
# name -> (environment, threads). "native": whatever PyTorch picks on this CPU.
SETTINGS: dict[str, tuple[dict[str, str], int]] = {
    "native": ({}, 1),
    "native, 2 threads": ({}, 2),
    "ATen default": ({"ATEN_CPU_CAPABILITY": "default"}, 1),
    "ATen avx2": ({"ATEN_CPU_CAPABILITY": "avx2"}, 1),
    "ATen avx512": ({"ATEN_CPU_CAPABILITY": "avx512"}, 1),
    "oneDNN SSE41": ({"ONEDNN_MAX_CPU_ISA": "SSE41"}, 1),
    "oneDNN AVX2": ({"ONEDNN_MAX_CPU_ISA": "AVX2"}, 1),
    "ATen default + oneDNN SSE41": ({"ATEN_CPU_CAPABILITY": "default", "ONEDNN_MAX_CPU_ISA": "SSE41"}, 1),
}
SHORT = {"native": "native", "default": "ATen default"}


def run_setting(name: str, tmp: Path) -> dict:
    """One ``--measure`` run in a fresh process under setting ``name``; returns what it measured."""
    env_extra, threads = SETTINGS[name]
    env = {**os.environ, **env_extra, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    out = tmp / f"{len(list(tmp.iterdir()))}.pt"
    start = time.perf_counter()
    subprocess.run([sys.executable, str(REPO / "tests" / "test_golden.py"), "--measure", str(out)], env=env, check=True)
    print(f"[kernel spread] {name}: {time.perf_counter() - start:.0f} s", flush=True)
    return torch.load(out, weights_only=True)


def spreads(runs: dict[str, dict], golden: dict) -> dict[str, dict]:
    """Per key: the largest difference between two settings, and between a setting and the golden file."""
    table: dict[str, dict] = {}
    for key in golden["outputs"]:
        kind, tol = tolerance(key)
        values = {name: run["outputs"][key] for name, run in runs.items()}
        between = max((difference(kind, a, b) for a, b in itertools.permutations(values.values(), 2)), default=0.0)
        to_golden = max(difference(kind, value, golden["outputs"][key]) for value in values.values())
        table[key] = {"kind": kind, "tolerance": tol, "between_settings": between, "to_golden": to_golden}
    for key in golden["benchmark"]:
        kind, tol = tolerance(key)
        values = [run["benchmark"].get(key, float("nan")) for run in runs.values()]
        table[key] = {
            "kind": kind,
            "tolerance": tol,
            "between_settings": max(values) - min(values),
            "to_golden": max(abs(v - golden["benchmark"][key]) for v in values),
        }
    for key, limit in RUNTIME_TOLERANCES.items():
        per_setting = {name: run["runtime"][key] for name, run in runs.items()}
        table[f"runtime/{key}"] = {
            "kind": "scale" if key.endswith("map") else "abs",
            "tolerance": limit,
            "between_settings": None,
            "to_golden": None,
            "onnx_vs_pytorch": max(per_setting.values()),
            "onnx_vs_pytorch_per_setting": per_setting,
        }
    return table


def markdown(payload: dict) -> str:
    rows = payload["keys"]
    lines = [
        "# How far our numbers move across CPU kernels (ours)",
        "",
        f"Written by `python -m saliency_research.bench.kernel_spread` on {payload['machine']['cpu']} "
        f"(native capability {payload['machine']['native_capability']}), torch {payload['machine']['torch']}, "
        f"{payload['when']}, {payload['seconds']:.0f} s. Settings, each in a fresh process: "
        + ", ".join(f"{name} ({payload['capabilities'][name]})" for name in payload["settings"])
        + f". The golden file was recorded with capability {payload['golden_capability']}.",
        "",
        "Units: `scale` = max |difference| / the map's largest value; `abs` = max |difference|. A tolerance "
        "(tests/test_golden.py, tests/test_runtime.py) must sit above the largest spread; the margin column is "
        "tolerance / largest spread.",
        "",
    ]
    groups: dict[str, list[str]] = {}
    for key in rows:
        groups.setdefault(_group(key), []).append(key)
    lines += ["| quantity (keys) | unit | largest between settings | largest to golden | tolerance | margin |"]
    lines += ["|---|---|---|---|---|---|"]
    for group, keys in groups.items():
        first = rows[keys[0]]
        if group.startswith("runtime/"):
            largest = max(rows[k]["onnx_vs_pytorch"] for k in keys)
            between, to_golden = f"ONNX Runtime vs PyTorch: {largest:.2g}", "-"
        else:
            between_value = max(rows[k]["between_settings"] for k in keys)
            golden_value = max(rows[k]["to_golden"] for k in keys)
            largest = max(between_value, golden_value)
            between, to_golden = f"{between_value:.2g}", f"{golden_value:.2g}"
        tol = max(rows[k]["tolerance"] for k in keys)
        margin = "-" if largest == 0 else f"x{tol / largest:.0f}" if tol else "none"
        lines.append(f"| {group} ({len(keys)}) | {first['kind']} | {between} | {to_golden} | {tol:g} | {margin} |")
    lines += ["", "Patterns and their reasons: `TOLERANCES` in tests/test_golden.py.", ""]
    return "\n".join(lines)


def _group(key: str) -> str:
    """The TOLERANCES pattern a key falls under (runtime keys stand alone)."""
    return key if key.startswith("runtime/") else pattern_of(key)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--settings", nargs="+", default=list(SETTINGS), help=f"from: {', '.join(SETTINGS)}")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    args.settings = [SHORT.get(name, name) for name in args.settings]
    unknown = [name for name in args.settings if name not in SETTINGS]
    if unknown:
        parser.error(f"--settings: unknown {unknown}; choose from {list(SETTINGS)}")
    golden = torch.load(GOLDEN, weights_only=True)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        runs = {name: run_setting(name, Path(tmp)) for name in args.settings}
    info = json.loads((GOLDEN.parent / "golden.json").read_text())
    payload = {
        "settings": args.settings,
        "capabilities": {name: run["capability"] for name, run in runs.items()},
        "golden_capability": info.get("cpu_capability", "not recorded (an AVX2 machine)"),
        "machine": {
            "cpu": platform.processor() or _cpu_name(),
            "native_capability": torch.backends.cpu.get_cpu_capability(),
            "torch": torch.__version__,
        },
        "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "seconds": time.perf_counter() - start,
        "keys": spreads(runs, golden),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "kernel_spread.json").write_text(json.dumps(payload, indent=1) + "\n")
    (args.out / "kernel_spread.md").write_text(markdown(payload))
    print(markdown(payload))
    return 0


def _cpu_name() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return "unknown CPU"


if __name__ == "__main__":
    raise SystemExit(main())
