"""Remote model specs (``openai:MODEL@URL``, ``openai:NAME``) and the named-endpoint config file."""

from __future__ import annotations

import pytest

from engine.endpoints import INLINE_KEY_ENV, RemoteEndpoint, config_path, load_endpoints, parse_remote_spec
from engine.errors import InvalidRequestError, ModelNotFoundError
from engine.remote import OpenAIBackend

CONFIG = """
[endpoints.gpu]
url = "https://gpu-box:8000/v1/"
model = "Qwen/Qwen2.5-7B-Instruct"
api_key_env = "GPU_BOX_KEY"
max_concurrency = 32
stall_timeout_s = 30

[endpoints.local]
url = "http://127.0.0.1:8080"
model = "smol"
"""


def test_inline_specs():
    ep = parse_remote_spec("openai:smol@http://127.0.0.1:8123/v1")
    assert (ep.model, ep.base_url, ep.host, ep.api_key_env) == ("smol", "http://127.0.0.1:8123/v1", "127.0.0.1:8123",
                                                                INLINE_KEY_ENV)
    # A model name may contain '@' and '/'; the URL starts at the last '@http'.
    ep = parse_remote_spec("openai:org/model@rev2@https://host.example/api/v1/")
    assert (ep.model, ep.base_url) == ("org/model@rev2", "https://host.example/api/v1")
    assert parse_remote_spec("openai:m@http://host:8000").base_url == "http://host:8000/v1"  # /v1 added


@pytest.mark.parametrize("spec, match", [
    ("openai:@http://host:8000/v1", "names no model"),
    ("openai:", "names no server"),
    ("openai:model@localhost:8000/v1", "neither an http"),
    ("openai:model@ftp://host/v1", "neither an http"),
    ("openai:@gpu", "names no model"),
    ("openai:m@http://user:secret@host:8000/v1", "contains credentials"),
    ("smol@http://host/v1", "not a remote model spec"),
])
def test_bad_specs_are_invalid_requests(spec: str, match: str, endpoint_config):
    endpoint_config(CONFIG)
    with pytest.raises(InvalidRequestError, match=match) as raised:
        parse_remote_spec(spec)
    assert "secret" not in str(raised.value)


def test_named_endpoints_from_the_config_file(endpoint_config, monkeypatch):
    path = endpoint_config(CONFIG)
    assert config_path() == path
    gpu = parse_remote_spec("openai:gpu")
    assert gpu == RemoteEndpoint(base_url="https://gpu-box:8000/v1", model="Qwen/Qwen2.5-7B-Instruct",
                                 api_key_env="GPU_BOX_KEY", name="gpu", max_concurrency=32, stall_timeout_s=30)
    assert parse_remote_spec("openai:other/model@gpu").model == "other/model"  # another model, same server
    local = parse_remote_spec("openai:local")
    assert local.base_url == "http://127.0.0.1:8080/v1" and local.api_key_env is None and local.max_concurrency == 8

    monkeypatch.setenv("GPU_BOX_KEY", "sk-very-secret")
    assert gpu.api_key() == "sk-very-secret" and "sk-very-secret" not in repr(gpu)


def test_unknown_endpoint_lists_the_known_ones(endpoint_config):
    endpoint_config(CONFIG)
    with pytest.raises(ModelNotFoundError, match="no remote endpoint named 'gpu2'") as raised:
        parse_remote_spec("openai:gpu2")
    assert raised.value.hint == "configured endpoints: gpu, local"


def test_no_config_file_means_no_endpoints(tmp_path, monkeypatch):
    monkeypatch.setenv("LMSCOPE_CONFIG", str(tmp_path / "missing.toml"))
    assert load_endpoints() == {}
    with pytest.raises(ModelNotFoundError, match="no remote endpoint named 'gpu'") as raised:
        parse_remote_spec("openai:gpu")
    assert "[endpoints.gpu]" in raised.value.hint


@pytest.mark.parametrize("text, match", [
    ("[endpoints.a\nurl = 1", "cannot read the config file"),
    ('[endpoints.a]\nurl = "http://h/v1"\nmodel = "m"\nmax_concurency = 4', "unknown settings: max_concurency"),
    ('[endpoints.a]\nmodel = "m"', "needs url"),
    ('[endpoints.a]\nurl = "http://h/v1"\nmodel = "m"\nmax_concurrency = 0', "max_concurrency must be"),
    ('[endpoints.a]\nurl = "http://h/v1"\nmodel = "m"\napi_key_env = 3', "api_key_env must be"),
    ('[endpoints.a]\nurl = "h:8000"\nmodel = "m"', "not an http"),
    ('endpoints = 3', "must be a table"),
])
def test_bad_config_files_are_clear_errors(text: str, match: str, endpoint_config):
    path = endpoint_config(text)
    with pytest.raises(InvalidRequestError, match=match) as raised:
        parse_remote_spec("openai:a")
    assert str(path) in raised.value.message


async def test_api_key_is_sent_but_never_shown(monkeypatch):
    monkeypatch.setenv(INLINE_KEY_ENV, "sk-very-secret")
    backend = OpenAIBackend("openai:m@http://127.0.0.1:9/v1", parse_remote_spec("openai:m@http://127.0.0.1:9/v1"))
    try:
        assert backend._client.headers["authorization"] == "Bearer sk-very-secret"
        assert "sk-very-secret" not in repr(backend.info) + repr(backend.endpoint)
        error = backend._http_error(401, b'{"error": {"message": "bad key sk-very-secret"}}', "chat/completions")
        assert "sk-very-secret" not in str(error) and INLINE_KEY_ENV in error.hint
    finally:
        await backend.aclose()


@pytest.mark.parametrize("spec", [
    "openai:m@http://host:8000/v1?api_key=sk-very-secret",
    "openai:m@http://host:8000/v1?key=sk-very-secret",
    "openai:m@http://host:8000/v1?token=sk-very-secret",
    "openai:m@https://host/v1?stream=1&access_token=sk-very-secret",
    "openai:m@http://user:sk-very-secret@host:8000/v1",
    "openai:m@http://sk-very-secret@host:8000/v1",
    "openai:@http://host:8000/v1?api_key=sk-very-secret",  # also malformed: the key is still not quoted
    "openai:m@host:8000/v1?api_key=sk-very-secret",  # no scheme
    "openai:m@ftp://user:sk-very-secret@host/v1",
])
async def test_keys_in_urls_are_refused_without_repeating_them(spec: str, engine, endpoint_config):
    endpoint_config(CONFIG)
    with pytest.raises(InvalidRequestError, match="contains credentials") as raised:
        await engine.load(spec)  # the whole path: engine, backend, spec parsing
    assert "very-secret" not in str(raised.value)
    assert INLINE_KEY_ENV in raised.value.hint and "api_key_env" in raised.value.hint


def test_a_key_in_a_configured_url_is_refused(endpoint_config):
    path = endpoint_config('[endpoints.a]\nurl = "http://h:8000/v1?api_key=sk-very-secret"\nmodel = "m"\n')
    with pytest.raises(InvalidRequestError, match="contains credentials") as raised:
        parse_remote_spec("openai:a")
    assert str(path) in raised.value.message and "very-secret" not in str(raised.value)
    assert "api_key_env" in raised.value.hint


def test_other_query_parameters_are_kept():
    assert parse_remote_spec("openai:m@https://host/v1?api-version=2024-06-01").base_url == \
        "https://host/v1?api-version=2024-06-01"
