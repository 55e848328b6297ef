"""Streaming readers for the formats evaluation data comes in.

Every reader yields :class:`Record` objects one at a time, so a run with ``limit: 50`` reads
only as far as its fiftieth example, however large the file.

- ``squad``: SQuAD v1.1 JSON (``data[].paragraphs[].qas[]``), one record per question with
  every gold answer kept; articles are decoded one by one, never the whole file at once.
- ``jsonl``: one JSON object per line.
- ``csv``: a header row, then one record per row.
- ``parallel``: line-aligned plain-text files, a source and one or more references.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from scenarios.errors import DataError

FORMATS = ("squad", "jsonl", "csv", "parallel")


@dataclass(frozen=True)
class Record:
    """One raw item of a data file and where it came from (``file:line`` or ``file#n``)."""

    location: str
    line: int | None
    fields: dict[str, Any]


def infer_format(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".ndjson"):
        return "jsonl"
    if suffix in (".csv", ".tsv"):
        return "csv"
    if suffix == ".json":
        return "squad"
    raise DataError(f"cannot tell the format of {path.name} from its suffix",
                    path=path, hint="set data.format to squad, jsonl, csv or parallel")


def _open_binary(path: Path):
    try:
        return open(path, "rb")
    except FileNotFoundError:
        raise DataError("data file not found", path=path, hint="paths are relative to the scenario file") from None
    except OSError as exc:
        raise DataError(f"cannot read data file: {exc.strerror}", path=path) from None


def _decode(raw: bytes, path: Path, line: int) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DataError(f"invalid UTF-8 at byte {exc.start} of the line", path=path, line=line,
                        hint="re-encode the file as UTF-8") from None


def read_jsonl(path: Path) -> Iterator[Record]:
    with _open_binary(path) as fh:
        for number, raw in enumerate(fh, 1):
            text = _decode(raw, path, number).strip()
            if not text:
                continue
            try:
                obj = json.loads(text)
            except json.JSONDecodeError as exc:
                raise DataError(f"line is not valid JSON ({exc.msg} at column {exc.colno})", path=path,
                                line=number) from None
            except RecursionError:
                raise DataError("JSON nested too deeply", path=path, line=number) from None
            if not isinstance(obj, dict):
                raise DataError(f"expected a JSON object, found {type(obj).__name__}", path=path, line=number)
            yield Record(f"{path.name}:{number}", number, obj)


def read_csv(path: Path) -> Iterator[Record]:
    delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
    with _open_binary(path) as raw:
        text = io.TextIOWrapper(raw, encoding="utf-8", newline="")
        reader = csv.DictReader(text, delimiter=delimiter)
        try:
            for row in reader:
                if None in row:
                    raise DataError(f"row has {len(row) - 1 + len(row[None])} cells but the header has "
                                    f"{len(reader.fieldnames or [])}", path=path, line=reader.line_num)
                yield Record(f"{path.name}:{reader.line_num}", reader.line_num, dict(row))
        except UnicodeDecodeError as exc:
            raise DataError(f"invalid UTF-8 ({exc.reason})", path=path, line=reader.line_num + 1,
                            hint="re-encode the file as UTF-8") from None
        except csv.Error as exc:
            raise DataError(f"malformed CSV: {exc}", path=path, line=reader.line_num) from None


def read_parallel(source: Path, references: list[Path]) -> Iterator[Record]:
    """Line i of ``source`` with line i of every reference file; counts must agree."""
    files = [source, *references]
    handles = [_open_binary(p) for p in files]
    try:
        number = 0
        while True:
            number += 1
            lines = [h.readline() for h in handles]
            ended = [p for p, raw in zip(files, lines) if not raw]
            if len(ended) == len(files):
                return
            if ended:
                longer = [p.name for p in files if p not in ended]
                raise DataError(
                    f"line counts differ: {', '.join(p.name for p in ended)} ended after {number - 1} lines "
                    f"but {', '.join(longer)} go on", path=ended[0], line=number - 1,
                    hint="parallel files must be line-aligned")
            texts = [_decode(raw, p, number).rstrip("\r\n") for p, raw in zip(files, lines)]
            yield Record(f"{source.name}:{number}", number,
                         {"id": str(number), "source": texts[0], "references": texts[1:]})
    finally:
        for h in handles:
            h.close()


def _iter_array_items(fh, path: Path, key: str, chunk_size: int = 1 << 16) -> Iterator[Any]:
    """Items of the top-level ``key`` array of a JSON object, decoded one at a time."""
    decoder = json.JSONDecoder()
    buffer = ""
    reader = io.TextIOWrapper(fh, encoding="utf-8")

    def more() -> bool:
        nonlocal buffer
        try:
            chunk = reader.read(chunk_size)
        except UnicodeDecodeError as exc:
            raise DataError(f"invalid UTF-8 ({exc.reason})", path=path) from None
        buffer += chunk
        return bool(chunk)

    marker = f'"{key}"'
    while marker not in buffer:
        if not more():
            raise DataError(f'no "{key}" array: not a SQuAD-format file', path=path)
    pos = buffer.index(marker) + len(marker)
    expect = [":", "["]  # punctuation before the first item; after that, items separated by ","
    first = True
    while True:
        buffer = buffer[pos:].lstrip()
        pos = 0
        if not buffer:
            if not more():
                raise DataError("file ends inside the data array", path=path)
            continue
        if expect:
            if not buffer.startswith(expect[0]):
                raise DataError(f'"{key}" is not an array: not a SQuAD-format file', path=path)
            expect.pop(0)
            pos = 1
            continue
        if buffer.startswith("]"):
            return
        if not first:
            if not buffer.startswith(","):
                raise DataError("invalid JSON in the data array (expected ',' between items)", path=path)
            buffer = buffer[1:].lstrip()
            if not buffer and not more():
                raise DataError("file ends inside the data array", path=path)
        while True:
            try:
                item, end = decoder.raw_decode(buffer)
                break
            except json.JSONDecodeError as exc:
                if not more():
                    raise DataError(f"invalid JSON in the data array ({exc.msg})", path=path) from None
            except RecursionError:
                raise DataError("JSON nested too deeply in the data array", path=path) from None
        yield item
        first = False
        pos = end


def _objects(items: Any, path: Path, what: str, where: str) -> list[dict]:
    """``items`` as a list of JSON objects, or a DataError naming what is wrong and where."""
    if items is None:
        return []
    if not isinstance(items, list):
        raise DataError(f"{where}: {what} should be a list, found {_json_type(items)}", path=path,
                        hint="is this a SQuAD v1.1 file?")
    for position, item in enumerate(items, 1):
        if not isinstance(item, dict):
            raise DataError(f"{where}: {what} #{position} should be an object, found {_json_type(item)}",
                            path=path, hint="is this a SQuAD v1.1 file?")
    return items


def _json_type(value: Any) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "true/false", type(None): "null"}.get(
        type(value), "a number")


def read_squad(path: Path) -> Iterator[Record]:
    with _open_binary(path) as fh:
        for article_number, article in enumerate(_iter_array_items(fh, path, "data"), 1):
            (article,) = _objects([article], path, "article", f"data[{article_number - 1}]")
            title = article.get("title", "")
            for p_number, paragraph in enumerate(_objects(article.get("paragraphs"), path, "paragraphs",
                                                          f"article {article_number}")):
                context = paragraph.get("context", "")
                for qa in _objects(paragraph.get("qas"), path, "qas", f"article {article_number}, paragraph {p_number + 1}"):
                    answers = [a.get("text", "") for a in qa.get("answers") or [] if isinstance(a, dict)]
                    qid = str(qa.get("id", ""))
                    yield Record(f"{path.name}#{qid or article_number}", None, {
                        "id": qid, "title": title, "context": context,
                        "question": qa.get("question", ""), "answers": answers,
                    })
