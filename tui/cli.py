"""The ``lmscope`` command: the terminal app, and headless commands for scripts."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from typing import NoReturn

EXIT_ERROR = 2


class _Parser(argparse.ArgumentParser):
    """argparse with lmscope's error format: one ``lmscope: error:`` line, a hint, exit status 2."""

    def error(self, message: str) -> NoReturn:
        print(f"lmscope: error: {message}", file=sys.stderr)
        print(f"lmscope: hint: `{self.prog} --help` lists the options", file=sys.stderr)
        sys.exit(EXIT_ERROR)


def _parser() -> argparse.ArgumentParser:
    from scenarios.arguments import add_backend_option, at_least, seed

    parser = _Parser(prog="lmscope", description="Chat with, score and compare language models.")
    parser.add_argument("--model", default="default",
                        help="'default' (embedded SmolLM2-135M-Instruct), a hub id, a model folder or a .gguf file")
    parser.add_argument("--device", default=None, help="auto (default), cpu, cuda, cuda:N or mps")
    parser.add_argument("--dtype", default=None, help="auto (default), float32, bfloat16 or float16")
    parser.add_argument("--threads", type=at_least(1), default=None,
                        help="CPU threads per model (default: every physical core on llama.cpp, "
                             "all cores but one on transformers)")
    add_backend_option(parser)
    parser.add_argument("--in-process", action="store_true",
                        help="run models in the app's own process (default: one process per model, so "
                             "decoding never waits on the UI; faster, but each model start imports torch again)")
    sub = parser.add_subparsers(dest="command")
    chat = sub.add_parser("chat", help="chat with a model (--once PROMPT streams one answer to stdout)")
    chat.add_argument("--once", metavar="PROMPT", help="answer PROMPT on stdout and exit")
    chat.add_argument("--model", dest="chat_model", default=None, help=argparse.SUPPRESS)
    add_backend_option(chat, dest="command_backend")
    chat.add_argument("--system", default=None, help="system prompt")
    chat.add_argument("--max-new-tokens", type=at_least(1), default=256)
    chat.add_argument("--temperature", type=float, default=0.0, help="0 = greedy (default)")
    chat.add_argument("--top-p", type=float, default=1.0)
    chat.add_argument("--top-k", type=at_least(0), default=0)
    chat.add_argument("--repetition-penalty", type=float, default=1.0)
    chat.add_argument("--seed", type=seed, default=None)
    chat.add_argument("--stop", action="append", default=[], help="stop string (repeatable)")
    chat.add_argument("--stats", action="store_true", help="print token counts and speed to stderr")
    from scenarios.commands import add_commands

    add_commands(sub)
    return parser


async def _chat_once(args: argparse.Namespace) -> int:
    from engine import ChatMessage, ChatRequest, Engine, EngineConfig, GenerationParams, GenerationResult
    from scenarios.arguments import chosen_backend

    model = args.chat_model or args.model
    params = GenerationParams(
        max_new_tokens=args.max_new_tokens, temperature=args.temperature, top_p=args.top_p, top_k=args.top_k,
        repetition_penalty=args.repetition_penalty, seed=args.seed, stop=tuple(args.stop))
    messages = ([ChatMessage("system", args.system)] if args.system else []) + [ChatMessage("user", args.once)]
    config = EngineConfig(threads=args.threads, device=args.device, dtype=args.dtype, backend=chosen_backend(args))
    async with Engine(config) as engine:
        info = await engine.load(model, progress=lambda msg: print(f"[{model}] {msg}", file=sys.stderr, flush=True))
        result: GenerationResult | None = None
        async for event in engine.stream(ChatRequest(info.name, tuple(messages), params)):
            if isinstance(event, GenerationResult):
                result = event
            else:
                sys.stdout.write(event.text)
                sys.stdout.flush()
        sys.stdout.write("\n")
        if result is not None:
            for warning in result.warnings:
                print(f"warning: {warning}", file=sys.stderr)
            if args.stats:
                u = result.usage
                print(f"[{u.prompt_tokens} prompt + {u.new_tokens} new tokens, first token {u.time_to_first_token_s:.2f} s, "
                      f"{u.tokens_per_s:.1f} tok/s, {u.device} {u.dtype}, backend {u.backend}, seed {u.seed}, "
                      f"finish: {result.finish_reason}]",
                      file=sys.stderr)
    return 0


def _dispatch(args: argparse.Namespace) -> int:
    if args.command == "chat" and args.once is not None:
        return asyncio.run(_chat_once(args))
    if getattr(args, "handler", None) is not None:
        return args.handler(args)
    from scenarios.arguments import chosen_backend
    from tui.app import LmscopeApp

    LmscopeApp(model=getattr(args, "chat_model", None) or args.model, device=args.device,
               dtype=args.dtype, threads=args.threads, isolate=not args.in_process, backend=chosen_backend(args)).run()
    return 0


def _quiet_broken_pipe() -> int:
    """The reader went away (``lmscope runs | head -1``): stop quietly, as a filter should."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # so the interpreter's final flush cannot fail again
    except OSError:
        pass
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``lmscope`` console script: every failure is one line and exit status 2."""
    args = _parser().parse_args(argv)
    # The GGUF converter draws tqdm bars; load progress is reported through the engine instead.
    os.environ.setdefault("TQDM_DISABLE", "1")
    from scenarios.errors import describe_error

    try:
        status = _dispatch(args)
        sys.stdout.flush()
        return status
    except BrokenPipeError:
        return _quiet_broken_pipe()
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # noqa: BLE001 - ours render as one line; anything else too, with a log
        message, hint = describe_error(exc)
        print(f"lmscope: error: {message}", file=sys.stderr)
        if hint:
            print(f"lmscope: hint: {hint}", file=sys.stderr)
        return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
