"""Choosing device, dtype and CPU thread count."""

from __future__ import annotations

import os

import torch

from engine.errors import InvalidRequestError

_DTYPES = {
    "float32": torch.float32, "fp32": torch.float32,
    "bfloat16": torch.bfloat16, "bf16": torch.bfloat16,
    "float16": torch.float16, "fp16": torch.float16, "half": torch.float16,
}


def pick_device(requested: str | None = None) -> str:
    """``requested`` if given (validated), else cuda → mps → cpu."""
    if requested and requested != "auto":
        kind = requested.split(":")[0]
        if kind == "cuda" and not torch.cuda.is_available():
            raise InvalidRequestError(f"device {requested!r} asked for, but CUDA is not available here",
                                      hint="use --device cpu or leave it on auto")
        if kind == "mps" and not torch.backends.mps.is_available():
            raise InvalidRequestError(f"device {requested!r} asked for, but MPS is not available here")
        if kind not in ("cuda", "mps", "cpu"):
            raise InvalidRequestError(f"unknown device {requested!r}", hint="use auto, cpu, cuda, cuda:N or mps")
        return requested
    if torch.cuda.is_available():
        return "cuda"
    if torch.backends.mps.is_available():
        return "mps"
    return "cpu"


def pick_dtype(device: str, requested: str | None = None) -> torch.dtype:
    """``requested`` if given, else by measurement rather than habit: the dtype a model loads in
    and is scored in (generation may use another: :func:`workload_dtypes`).

    On CPU, float32: scores then equal float32 reference loops (bfloat16 moved SmolLM2's
    perplexity by 0.5%), and on CPUs without native bfloat16 float32 was faster for batches and
    forward passes too (2-core machine: 75 vs 33 tok/s batched decode, 450 vs 62 tok/s forward).
    On CUDA, bfloat16 where supported, else float16; on MPS, float16.
    """
    if requested and requested != "auto":
        try:
            return _DTYPES[requested.lower()]
        except KeyError:
            raise InvalidRequestError(f"unknown dtype {requested!r}",
                                      hint="use auto, float32, bfloat16 or float16") from None
    if device.startswith("cuda"):
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if device.startswith("mps"):
        return torch.float16
    return torch.float32


def cpu_has_native_bf16() -> bool:
    """Whether this CPU multiplies bfloat16 in hardware (AMX tiles or AVX512-BF16), which is where
    torch's bfloat16 matmuls beat float32."""
    probes = [getattr(torch.cpu, name, None) for name in ("_is_amx_tile_supported", "_is_avx512_bf16_supported")]
    try:
        return any(probe() for probe in probes if probe is not None)
    except RuntimeError:  # a torch build without the cpuinfo probes
        return False


def workload_dtypes(device: str, requested: str | None = None) -> tuple[torch.dtype, torch.dtype, str]:
    """(dtype for batched generation, dtype for everything else, why) for a model on ``device``.

    A dtype asked for serves everything ("asked"). On a CPU with native bfloat16, batches of
    requests decode in bfloat16 and single streams and scoring run in float32 ("by workload").
    Measured on such a CPU (2-core Xeon with AMX, SmolLM2-135M, one thread, torch 2.13):
    batched decode 154 tok/s in bfloat16 against 62 in float32 at batch 16, 248 against 62 at
    batch 64; perplexity 1,051 against 242 tok/s but 0.5% off the float32 value; single stream
    18.4 against 17.6 tok/s, a gain within the noise, so a chat's token log-probabilities stay
    equal to what scoring computes. Elsewhere both are :func:`pick_dtype`'s ("auto").
    bfloat16 batches are not batch-invariant: a request's text can depend on its batch.
    """
    if requested and requested != "auto":
        dtype = pick_dtype(device, requested)
        return dtype, dtype, "asked"
    dtype = pick_dtype(device)
    if device == "cpu" and dtype == torch.float32 and cpu_has_native_bf16():
        return torch.bfloat16, dtype, "by workload"
    return dtype, dtype, "auto"


def dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


def threads_from_environment() -> int | None:
    """``LMSCOPE_THREADS`` as a number, or None when unset. Raises InvalidRequestError when it is not one."""
    env = os.environ.get("LMSCOPE_THREADS", "").strip()
    if not env:
        return None
    if not env.isdigit() or int(env) < 1:
        raise InvalidRequestError(f"LMSCOPE_THREADS={env!r} is not a thread count",
                                  hint="set it to a whole number of at least 1, or unset it")
    return int(env)


def default_threads() -> int:
    """CPU threads for torch: ``LMSCOPE_THREADS`` if set, else all cores but one.

    Leaving a core free keeps a terminal UI responsive; on a loaded 2-core machine one torch
    thread also held up better than two.
    """
    return threads_from_environment() or max(1, (os.cpu_count() or 2) - 1)


def physical_cores() -> int:
    """Physical cores this process may run on (hyper-threads of one core count once); all
    allowed CPUs where the topology cannot be read."""
    try:
        allowed = sorted(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1
    cores = set()
    for cpu in allowed:
        topology = f"/sys/devices/system/cpu/cpu{cpu}/topology"
        try:
            with open(f"{topology}/physical_package_id") as package, open(f"{topology}/core_id") as core:
                cores.add((package.read().strip(), core.read().strip()))
        except OSError:
            return len(allowed)
    return max(1, len(cores))


def llama_threads() -> int:
    """CPU threads for llama.cpp: ``LMSCOPE_THREADS`` if set, else every physical core, as
    llama.cpp and Ollama choose.

    Unlike torch's, llama.cpp's decode loop does not share the interpreter with the UI, and a
    core left free costs a third of its speed: SmolLM2 Q4_1 streamed at 73 tok/s on 2 threads
    against 46 on 1 here, with keypress latency in the chat still ~15 ms median, 43 ms at most.
    The price is on a machine busy with other work, where threads that meet at a barrier after
    every operation wait for a descheduled one: pass fewer threads there (``--threads``). The
    engine also gives a llama.cpp model one thread fewer for each other model busy at the same
    time (:meth:`engine.Engine.llama_threads_now`).
    """
    return threads_from_environment() or physical_cores()
