"""Where a remote model is served: ``openai:MODEL@URL`` specs and named endpoints from the config file.

Named endpoints live in ``$LMSCOPE_CONFIG`` (or ``<user config dir>/lmscope/config.toml``)::

    [endpoints.gpu]
    url = "http://gpu-box:8000/v1"
    model = "Qwen/Qwen2.5-7B-Instruct"
    api_key_env = "GPU_BOX_API_KEY"   # the *name* of the variable; the key itself is never stored
    max_concurrency = 32              # optional settings: see RemoteEndpoint

and are used as ``openai:gpu`` (or ``openai:OTHER_MODEL@gpu`` for another model on the same server).
"""

from __future__ import annotations

import dataclasses
import os
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit, urlunsplit

import platformdirs

from engine.errors import InvalidRequestError, ModelNotFoundError
from engine.spec import REMOTE_PREFIX

INLINE_KEY_ENV = "LMSCOPE_API_KEY"
_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")
# Query parameters that carry credentials (api_key, key, token, access_token, password, sig, ...).
_SECRET_PARAM = re.compile(r"key|token|secret|passw|auth|sig|credential", re.IGNORECASE)


@dataclass(frozen=True)
class RemoteEndpoint:
    """An OpenAI-compatible server and the model to ask it for, with connection settings.

    ``api_key_env`` names the environment variable holding the API key (read when connecting,
    never kept in this object). ``stall_timeout_s`` is the longest wait for the next streamed
    text (keep-alives and empty chunks do not count); ``request_timeout_s`` the longest any
    request may take, streamed or not, retries included.
    ``max_retries`` retries (with exponential backoff from ``backoff_s``, and at least the
    server's ``Retry-After``) apply to connection errors and to 429 / 503 answers, never to a
    stream that already started.
    """

    base_url: str
    model: str
    api_key_env: str | None = INLINE_KEY_ENV
    name: str | None = None
    max_concurrency: int = 8
    connect_timeout_s: float = 10.0
    stall_timeout_s: float = 120.0
    request_timeout_s: float = 600.0
    max_retries: int = 3
    backoff_s: float = 0.25

    def __post_init__(self) -> None:
        checks = [
            (isinstance(self.max_concurrency, int) and self.max_concurrency >= 1, "max_concurrency must be an integer >= 1"),
            (isinstance(self.max_retries, int) and self.max_retries >= 0, "max_retries must be an integer >= 0"),
            (all(isinstance(v, (int, float)) and v > 0 for v in
                 (self.connect_timeout_s, self.stall_timeout_s, self.request_timeout_s)), "timeouts must be > 0"),
            (isinstance(self.backoff_s, (int, float)) and self.backoff_s >= 0, "backoff_s must be >= 0"),
        ]
        for ok, message in checks:
            if not ok:
                raise InvalidRequestError(f"remote endpoint {self.name or self.base_url}: {message}")

    @property
    def host(self) -> str:
        """``host[:port]`` of the server, for display (``remote:<host>``)."""
        return urlsplit(self.base_url).netloc.rpartition("@")[2]

    def api_key(self) -> str | None:
        """The API key from the environment, or None when unset."""
        return os.environ.get(self.api_key_env) or None if self.api_key_env else None


def config_path() -> Path:
    """``$LMSCOPE_CONFIG`` if set, else ``config.toml`` in the user config directory for lmscope."""
    env = os.environ.get("LMSCOPE_CONFIG")
    return Path(env).expanduser() if env else Path(platformdirs.user_config_dir("lmscope")) / "config.toml"


def normalize_url(url: str) -> str:
    """Validate an http(s) base URL; add ``/v1`` when it has no path; drop a trailing slash.

    Raises:
        InvalidRequestError: not an http(s) URL with a host, or it carries credentials (the
            message never repeats them).
    """
    refuse_credentials(url)
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidRequestError(f"{url!r} is not an http(s) URL",
                                  hint="write the server's base URL, e.g. http://127.0.0.1:8000/v1")
    path = parts.path.rstrip("/") or "/v1"
    return urlunsplit((parts.scheme, parts.netloc, path, parts.query, ""))


def refuse_credentials(url: str) -> None:
    """Refuse a URL that carries a secret: a user name or password, or a key-like query parameter
    (``?api_key=``, ``?key=``, ``?token=``, ...). A URL ends up in results, logs and messages.

    Raises:
        InvalidRequestError: naming the host and the parameter, never the secret; the hint
            points at the API key variable.
    """
    parts = urlsplit(url.strip())
    host = parts.netloc.rpartition("@")[2] or "the server"
    found = [f"query parameter {name!r}" for name, _ in parse_qsl(parts.query, keep_blank_values=True)
             if _SECRET_PARAM.search(name)]
    if "@" in parts.netloc:
        found.insert(0, "a user name or password")
    if found:
        raise InvalidRequestError(
            f"the URL of {host} contains credentials ({', '.join(found)}); they would end up in results and logs",
            hint=f"remove them from the URL and put the API key in an environment variable: {INLINE_KEY_ENV} "
                 "for an openai:MODEL@URL spec, or the variable named by api_key_env for a configured endpoint")


def parse_remote_spec(text: str, config_file: Path | None = None) -> RemoteEndpoint:
    """The endpoint a remote spec names.

    ``openai:MODEL@http://host:port/v1`` names the server inline (API key from
    ``$LMSCOPE_API_KEY``, if set); ``openai:NAME`` a named endpoint of the config file;
    ``openai:MODEL@NAME`` another model on a named endpoint's server.

    Raises:
        InvalidRequestError: the spec or the config file is malformed.
        ModelNotFoundError: no endpoint of that name is configured.
    """
    if not text.startswith(REMOTE_PREFIX):
        raise InvalidRequestError(f"{text!r} is not a remote model spec", hint=f"write {REMOTE_PREFIX}MODEL@URL")
    rest = text[len(REMOTE_PREFIX):].strip()
    usage = f"write {REMOTE_PREFIX}MODEL@http://host:port/v1 or {REMOTE_PREFIX}ENDPOINT_NAME"
    match = re.match(r"^(?P<model>.*)@(?P<url>https?://\S*)$", rest, re.IGNORECASE)
    if match:
        base_url = normalize_url(match["url"])  # first: the errors below quote the spec
        model = match["model"].strip()
        if not model:
            raise InvalidRequestError(f"remote spec {text!r} names no model before '@'", hint=usage)
        return RemoteEndpoint(base_url=base_url, model=model)
    # Not an http(s) URL, but maybe a mistyped one that still carries a key: the errors below quote the spec.
    scheme = re.search(r"[A-Za-z][A-Za-z0-9+.-]*://", rest)
    refuse_credentials(rest[scheme.start():] if scheme else "//" + rest.rpartition("@")[2])
    model, at, name = rest.rpartition("@")
    if not at:
        model, name = "", rest
    if not name:
        raise InvalidRequestError(f"remote spec {text!r} names no server", hint=usage)
    if at and not model.strip():
        raise InvalidRequestError(f"remote spec {text!r} names no model before '@'", hint=usage)
    if not _NAME.match(name):
        raise InvalidRequestError(f"remote spec {text!r}: {name!r} is neither an http(s) URL nor an endpoint name",
                                  hint=usage)
    endpoint = load_endpoints(config_file).get(name)
    if endpoint is None:
        path = config_file or config_path()
        known = sorted(load_endpoints(config_file))
        raise ModelNotFoundError(
            f"no remote endpoint named {name!r} in {path}",
            hint=(f"configured endpoints: {', '.join(known)}" if known else
                  f"add [endpoints.{name}] with url and model to {path}, or {usage}"))
    return dataclasses.replace(endpoint, model=model.strip()) if at else endpoint


_FIELDS = {f.name for f in dataclasses.fields(RemoteEndpoint)} - {"name", "base_url"} | {"url"}


def load_endpoints(config_file: Path | None = None) -> dict[str, RemoteEndpoint]:
    """Every ``[endpoints.NAME]`` table of the config file (none if the file does not exist).

    Raises:
        InvalidRequestError: the file is not valid TOML, or an endpoint lacks ``url`` / ``model``
            or has an unknown or mistyped setting.
    """
    path = config_file or config_path()
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise InvalidRequestError(f"cannot read the config file {path}: {exc}") from None
    tables = data.get("endpoints", {})
    if not isinstance(tables, dict):
        raise InvalidRequestError(f"{path}: 'endpoints' must be a table of [endpoints.NAME] tables")
    endpoints = {}
    for name, table in tables.items():
        where = f"{path}: [endpoints.{name}]"
        if not isinstance(table, dict):
            raise InvalidRequestError(f"{where} must be a table")
        unknown = sorted(set(table) - _FIELDS)
        if unknown:
            raise InvalidRequestError(f"{where} has unknown settings: {', '.join(unknown)}",
                                      hint=f"known settings: {', '.join(sorted(_FIELDS))}")
        missing = [key for key in ("url", "model") if not isinstance(table.get(key), str) or not table[key].strip()]
        if missing:
            raise InvalidRequestError(f"{where} needs {' and '.join(missing)} (strings)")
        settings = {k: v for k, v in table.items() if k != "url"}
        if "api_key_env" not in settings:
            settings["api_key_env"] = None
        elif not isinstance(settings["api_key_env"], str):
            raise InvalidRequestError(f"{where}: api_key_env must be the name of an environment variable")
        try:
            endpoints[name] = RemoteEndpoint(base_url=normalize_url(table["url"]), name=name, **settings)
        except InvalidRequestError as exc:
            raise InvalidRequestError(f"{where}: {exc.message}", exc.hint) from None
    return endpoints
