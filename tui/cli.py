"""The ``lmscope`` command: the terminal app, and headless commands for scripts."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys

EXIT_ERROR = 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lmscope", description="Chat with, score and compare language models.")
    parser.add_argument("--model", default="default",
                        help="'default' (embedded SmolLM2-135M-Instruct), a hub id, a model folder or a .gguf file")
    parser.add_argument("--device", default=None, help="auto (default), cpu, cuda, cuda:N or mps")
    parser.add_argument("--dtype", default=None, help="auto (default), float32, bfloat16 or float16")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: all cores but one)")
    parser.add_argument("--in-process", action="store_true",
                        help="run models in the app's own process (default: one process per model, so "
                             "decoding never waits on the UI; faster, but each model start imports torch again)")
    sub = parser.add_subparsers(dest="command")
    chat = sub.add_parser("chat", help="chat with a model (--once PROMPT streams one answer to stdout)")
    chat.add_argument("--once", metavar="PROMPT", help="answer PROMPT on stdout and exit")
    chat.add_argument("--model", dest="chat_model", default=None, help=argparse.SUPPRESS)
    chat.add_argument("--system", default=None, help="system prompt")
    chat.add_argument("--max-new-tokens", type=int, default=256)
    chat.add_argument("--temperature", type=float, default=0.0, help="0 = greedy (default)")
    chat.add_argument("--top-p", type=float, default=1.0)
    chat.add_argument("--top-k", type=int, default=0)
    chat.add_argument("--repetition-penalty", type=float, default=1.0)
    chat.add_argument("--seed", type=int, default=None)
    chat.add_argument("--stop", action="append", default=[], help="stop string (repeatable)")
    chat.add_argument("--stats", action="store_true", help="print token counts and speed to stderr")
    from scenarios.commands import add_commands

    add_commands(sub)
    return parser


async def _chat_once(args: argparse.Namespace) -> int:
    from engine import ChatMessage, ChatRequest, Engine, EngineConfig, GenerationParams, GenerationResult

    model = args.chat_model or args.model
    params = GenerationParams(
        max_new_tokens=args.max_new_tokens, temperature=args.temperature, top_p=args.top_p, top_k=args.top_k,
        repetition_penalty=args.repetition_penalty, seed=args.seed, stop=tuple(args.stop))
    messages = ([ChatMessage("system", args.system)] if args.system else []) + [ChatMessage("user", args.once)]
    async with Engine(EngineConfig(threads=args.threads, device=args.device, dtype=args.dtype)) as engine:
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
                      f"{u.tokens_per_s:.1f} tok/s, {u.device} {u.dtype}, finish: {result.finish_reason}]",
                      file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``lmscope`` console script."""
    args = _parser().parse_args(argv)
    # The GGUF converter draws tqdm bars; load progress is reported through the engine instead.
    os.environ.setdefault("TQDM_DISABLE", "1")
    from engine.errors import LmscopeError

    try:
        if args.command == "chat" and args.once is not None:
            return asyncio.run(_chat_once(args))
        if getattr(args, "handler", None) is not None:
            return args.handler(args)
        from tui.app import LmscopeApp

        LmscopeApp(model=getattr(args, "chat_model", None) or args.model, device=args.device,
                   dtype=args.dtype, threads=args.threads, isolate=not args.in_process).run()
        return 0
    except LmscopeError as exc:
        print(f"lmscope: error: {exc.message}", file=sys.stderr)
        if exc.hint:
            print(f"lmscope: hint: {exc.hint}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
