"""How the compare_*.py scripts run PyTorch, the reference: as installed, or tuned for this machine.

Two things outside PyTorch's own code were measured to slow it down on the VMs qkv is benchmarked
on, and neither says anything about PyTorch's algorithms:

- **OpenBLAS's kernels can be forced.** OpenBLAS picks its kernels by CPU at load time, unless
  `OPENBLAS_CORETYPE` names them. The VMs here had `OPENBLAS_CORETYPE=Haswell` set in their
  environment, which makes OpenBLAS run its 256-bit AVX2 kernels on a Zen 5 whose FMA units are
  512 bits wide; left to itself, Debian's OpenBLAS 0.3.21 picks its AVX-512 "Cooperlake" kernels
  there.
- **glibc's malloc gives freed memory back to the kernel.** PyTorch frees a step's activations and
  gradients and allocates them again in the next step. Blocks above malloc's mmap threshold are
  unmapped on free, and the top of the heap is trimmed, so the next step faults every page in again
  (and the kernel zeroes each one). On a paravirtualised VM a page fault is expensive: `perf` put a
  fifth of a one-thread PyTorch run of the baby recipe in the page-fault entry, and the step's median
  was 87, 154 and 164 ms in three runs (70 to 210 ms within one), against 76, 64 and 77 ms with
  malloc keeping its memory. qkv keeps freed blocks in a cache of
  its own (core/tensor.cpp), so it does not pay this. `GLIBC_TUNABLES` with a 32 MiB mmap threshold
  (glibc's largest) and a huge trim threshold makes malloc keep the memory, as PyTorch's
  recommended jemalloc/tcmalloc set-ups do.

`--reference installed` (the default) runs PyTorch in the environment it is given; `--reference
tuned` removes `OPENBLAS_CORETYPE` (OpenBLAS's own choice for this CPU) and makes malloc keep freed
memory, for the PyTorch runs only (qkv's runs are left alone). Both print which kernels OpenBLAS
runs. A speed target should hold against the tuned reference too; the closing notes give both.
"""
import os
import subprocess
import sys

# glibc's limits: the mmap threshold may be at most 32 MiB on 64-bit; the trim threshold is any size.
KEEP_MEMORY = "glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=68719476736"


def add_option(ap):
    """Adds --reference installed|tuned to an argparse parser."""
    ap.add_argument("--reference", choices=["installed", "tuned"], default="installed",
                    help="run PyTorch as installed, or with OpenBLAS's best kernels for this CPU and a malloc "
                         "that keeps freed memory (see tests/bench/torch_reference.py)")


def environment(mode):
    """The environment for the PyTorch runs under --reference `mode`."""
    env = dict(os.environ)
    if mode == "tuned":
        env.pop("OPENBLAS_CORETYPE", None)
        env["GLIBC_TUNABLES"] = KEEP_MEMORY + (":" + env["GLIBC_TUNABLES"] if env.get("GLIBC_TUNABLES") else "")
    return env


PROBE = r"""
import ctypes, torch
core = "no OpenBLAS"
for line in open("/proc/self/maps"):
    if "libopenblas" in line:
        f = ctypes.CDLL(line.split()[-1]).openblas_get_corename
        f.restype = ctypes.c_char_p
        core = "OpenBLAS " + f().decode()
        break
print(f"PyTorch {torch.__version__}, {core} kernels")
"""


def describe(env):
    """One line: PyTorch's version, the OpenBLAS kernels it runs under `env`, and malloc's setting."""
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, env=env)
    what = out.stdout.strip() if out.returncode == 0 else f"(probe failed: {out.stderr.strip()[-200:]})"
    forced = f" (forced: OPENBLAS_CORETYPE={env['OPENBLAS_CORETYPE']})" if env.get("OPENBLAS_CORETYPE") else ""
    malloc = "malloc keeps freed memory" if KEEP_MEMORY in env.get("GLIBC_TUNABLES", "") else "malloc as installed"
    return f"reference: {what}{forced}, {malloc}"
