"""Argument types for the ``lmscope`` command line: one clear message for each bad value."""

from __future__ import annotations

import argparse
from collections.abc import Callable

from scenarios.scenario import MAX_SEED


def at_least(minimum: int) -> Callable[[str], int]:
    """An argparse type: an integer >= ``minimum`` (``--limit 0`` is an error, never "no limit")."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer >= {minimum}, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"expected an integer >= {minimum}, got {value}")
        return value

    parse.__name__ = f"integer >= {minimum}"
    return parse


def seed(text: str) -> int:
    """An argparse type: a seed from 0 to 2**63-1 (``1e23`` is neither an integer nor in range)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer from 0 to 2**63-1, got {text!r}") from None
    if not 0 <= value <= MAX_SEED:
        raise argparse.ArgumentTypeError(f"expected an integer from 0 to 2**63-1, got {value}")
    return value


def add_backend_option(parser: argparse.ArgumentParser, dest: str = "backend") -> None:
    """``--backend auto|hf|llamacpp`` on a command that loads models (``ModelSpec.backend``).

    Subcommands use their own ``dest``: argparse lets a subcommand's defaults overwrite the
    values given before it (``lmscope --backend hf run ...``)."""
    from engine.spec import BACKEND_CHOICES

    parser.add_argument("--backend", dest=dest, choices=BACKEND_CHOICES, default=None,
                        help="what runs local models: llama.cpp for .gguf files when installed, else transformers "
                             "(auto, the default); hf (transformers); llamacpp (.gguf files only)")


def chosen_backend(args: argparse.Namespace) -> str | None:
    """The ``--backend`` given after the subcommand, else the one before it, else None (auto)."""
    return getattr(args, "command_backend", None) or getattr(args, "backend", None)
