"""Chapter 08 (device): the peak estimate on fabricated /proc/cpuinfo texts, and the example at tiny settings.

The peak tests know the answer by hand (cores x lanes x 2 x FMA units x GHz). The tiny run checks real
values: every timing positive and finite, flops counted as 2n^3 for matmul, the percent of peak computed
from the same cpuinfo this machine has, cuda skipped with a reason when tinytensor cannot make a cuda
tensor, and the plot written. Nothing asserts on speed.
"""
import math
import os

import pytest
from helpers import load_example


@pytest.fixture(scope="module")
def ch08():
    return load_example("08_device")


def cpuinfo(n_proc: int, flags: str, mhz: str = "3000.000", core_ids=None) -> str:
    """A /proc/cpuinfo text with n_proc processors; core_ids[i] = (physical id, core id), or none listed."""
    blocks = []
    for i in range(n_proc):
        lines = [f"processor\t: {i}", "model name\t: Fabricated CPU @ 2.00GHz", f"cpu MHz\t\t: {mhz}"]
        if core_ids:
            lines += [f"physical id\t: {core_ids[i][0]}", f"core id\t\t: {core_ids[i][1]}"]
        lines.append(f"flags\t\t: fpu sse sse2 {flags}")
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks) + "\n"


def test_peak_avx512_with_hyperthreads(ch08):
    # 4 processors on 2 cores (hyperthreads), AVX-512 with 2 FMA units at 3 GHz: 16 * 2 * 2 * 3 = 192 per core
    text = cpuinfo(4, "avx avx2 fma avx512f avx512bw", core_ids=[(0, 0), (0, 0), (0, 1), (0, 1)])
    peak = ch08.estimate_peak(text)
    assert (peak.cores, peak.simd, peak.lanes, peak.fma_units) == (2, "AVX-512", 16, 2)
    assert peak.ghz == pytest.approx(3.0)
    assert peak.per_core == pytest.approx(192.0)
    assert peak.gflops(1) == pytest.approx(192.0) and peak.gflops(8) == pytest.approx(384.0)
    assert any("2 FMA units" in line for line in peak.how) and "384" in peak.how[-1]


def test_peak_avx2_sysfs_clock_and_vm_without_core_ids(ch08):
    # No core ids (as in some VMs): every processor counts as a core. The sysfs max clock wins over cpu MHz.
    peak = ch08.estimate_peak(cpuinfo(3, "avx avx2 fma", mhz="1200.000"), max_freq_khz=3.5e6)
    assert (peak.cores, peak.simd, peak.lanes, peak.fma_units) == (3, "AVX2", 8, 2)
    assert peak.per_core == pytest.approx(8 * 2 * 2 * 3.5) and peak.gflops(3) == pytest.approx(3 * 112.0)
    sse = ch08.estimate_peak(cpuinfo(1, "sse4_2", mhz=""))   # no clock listed: the model name's 2.00GHz
    assert (sse.lanes, sse.fma_units, sse.ghz) == (4, 1, pytest.approx(2.0))
    with pytest.raises(ValueError):
        ch08.estimate_peak("not a cpuinfo")


def test_example_runs_tiny(ch08, tmp_path, capsys):
    out = ch08.main(["--sizes", "32", "64", "--threads", "1", "2", "--steps", "1", "--n-layer", "1", "--n-head", "2",
                     "--n-embd", "32", "--block-size", "16", "--batch-size", "2", "--vocab-size", "64",
                     "--fused-rows", "64", "--out", str(tmp_path), "--no-progress"])
    rows, peak = out["rows"], out["peak"]
    assert peak == ch08.machine_peak() and peak.per_core > 0
    cpu = [r for r in rows if r.device == "cpu"]
    assert sorted({r.threads for r in cpu}) == [1, 2]
    for r in rows:
        assert r.seconds > 0 and math.isfinite(r.gflops) and r.gflops > 0, r
    matmuls = [r for r in cpu if r.size]
    assert sorted(r.size for r in matmuls) == [32, 32, 64, 64]
    assert all(r.flops == 2.0 * r.size ** 3 for r in matmuls)
    assert sum(r.workload.startswith("GPT step") for r in cpu) == 2
    assert sum(r.workload.startswith(("layer_norm", "cross_entropy")) for r in cpu) == 4
    if out["cuda_skipped"] is not None:
        assert not any(r.device == "cuda" for r in rows)
    printed = capsys.readouterr().out
    assert "peak = " in printed and "GFLOP/s" in printed
    first = matmuls[0]
    assert f"{100 * first.gflops / peak.gflops(first.threads):6.1f}%" in printed
    assert os.path.getsize(out["plot"]) > 1000 and out["plot"].startswith(str(tmp_path))
