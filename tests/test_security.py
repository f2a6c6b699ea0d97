"""Secrets never reach configs, logs or caches; remote code stays off; checkpoints load with weights_only=True."""

from __future__ import annotations

import io
import json
import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import torch
import yaml
from omegaconf import OmegaConf

from tests.hydra_utils import CONF, compose_train
from vlmalign.errors import ConfigError
from vlmalign.llm import BackendError, OpenAICompatibleBackend
from vlmalign.llm.openai_backend import public_url
from vlmalign.negatives.llm import LLMNegativeBuilder
from vlmalign.utils.secrets import (
    SECRET_KEY_PATTERN,
    RedactSecretsFilter,
    check_no_literal_secrets,
    is_secret_key,
    literal_secrets,
    redact_secrets,
)

SECRET_KEYS = ["api_key", "API_KEY", "apikey", "apiKey", "OPENAI_API_KEY", "WANDB_API_KEY", "x-api-key", "token",
               "hf_token", "HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "access_token", "auth_token", "secret",
               "client_secret", "secret_key", "password", "db_password", "access_key", "AWS_SECRET_ACCESS_KEY",
               "private_key", "Authorization"]
# Keys this repo, its configs and Hugging Face model/tokenizer configs use; none is a credential.
HARMLESS_KEYS = ["max_new_tokens", "max_tokens", "pad_token_id", "eos_token_id", "bos_token_id", "image_token",
                 "image_token_index", "bos_token", "pad_token", "unk_token", "tokens", "special_tokens",
                 "added_tokens", "extra_special_tokens", "tokenizer", "tokenizer_class", "pre_tokenizer",
                 "num_key_value_heads", "api_key_env", "key", "cache_key", "monkey", "tokenized", "secretary",
                 "TOKENIZERS_PARALLELISM", "SSH_AUTH_SOCK", "HF_HUB_OFFLINE", "WANDB_MODE"]
KEY = "sk-test-0123456789abcdef"


@pytest.mark.parametrize("key", SECRET_KEYS)
def test_secret_names_match(key):
    assert is_secret_key(key) and SECRET_KEY_PATTERN.match(key)


@pytest.mark.parametrize("key", HARMLESS_KEYS)
def test_harmless_names_do_not_match(key):
    assert not is_secret_key(key)


def test_redaction_of_nested_containers_is_a_copy():
    params = {"model": {"name": "m", "api_key": KEY, "max_new_tokens": 8, "pad_token_id": 0},
              "backends": [{"hf_token": KEY, "image_token": "<image>"}, ("x", {"password": "hunter22"})],
              "unset": {"api_key": None, "token": ""},
              "overrides": ["model.api_key=" + KEY, "trainer.max_steps=4"]}
    redacted = redact_secrets(params)
    assert redacted == {"model": {"name": "m", "api_key": "***", "max_new_tokens": 8, "pad_token_id": 0},
                        "backends": [{"hf_token": "***", "image_token": "<image>"}, ("x", {"password": "***"})],
                        "unset": {"api_key": None, "token": ""},
                        "overrides": ["model.api_key=***", "trainer.max_steps=4"]}
    assert params["model"]["api_key"] == KEY  # the input is untouched
    assert KEY not in json.dumps(redact_secrets(OmegaConf.create(params)))


def test_literal_secrets_flag_literals_but_not_environment_interpolations():
    cfg = OmegaConf.create({
        "llm": {"api_key": KEY, "token": "${oc.env:HF_TOKEN}", "api_key_env": "OPENAI_API_KEY",
                "secret": "${oc.env:SOME_SECRET,null}", "password": "${oc.env:DB_PASSWORD,hunter22}"},
        "loggers": [{"wandb": {"api_key": "${oc.env:WANDB_API_KEY}"}}, {"access_token": "abc123456"}],
        "unset": {"api_key": None, "token": "", "hf_token": "???"},
        "model": {"max_new_tokens": 8, "image_token": "<image>"},
    })
    assert literal_secrets(cfg) == ["llm.api_key", "llm.password", "loggers[1].access_token"]
    # resolving would have turned the interpolations into values: the check must not resolve
    assert literal_secrets(OmegaConf.create({"api_key": "${oc.env:VLMALIGN_NOT_SET_ANYWHERE}"})) == []


def test_check_no_literal_secrets_names_the_keys_never_the_value():
    cfg = OmegaConf.create({"llm": {"api_key": KEY}, "hf": {"token": "hf_abcdefghijkl"}})
    with pytest.raises(ConfigError) as caught:
        check_no_literal_secrets(cfg)
    message = str(caught.value)
    assert "llm.api_key" in message and "hf.token" in message and "${oc.env:NAME}" in message
    assert KEY not in message and "hf_abcdefghijkl" not in message
    check_no_literal_secrets(OmegaConf.create({"llm": {"api_key": "${oc.env:OPENAI_API_KEY}"}}))


@pytest.mark.parametrize("overrides", [[], ["experiment=shapes_quick"], ["logger=wandb", "model=hf"],
                                       ["objective=nsft", "data=shapes_nsft", "reference=none"]])
def test_the_repos_own_configs_hold_no_literal_secret(tmp_path, overrides):
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose("train", overrides=overrides, return_hydra_config=True)  # with the hydra node
    assert literal_secrets(cfg) == []
    GlobalHydra.instance().clear()


def test_log_filter_masks_secret_environment_values(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.setenv("HF_TOKEN", "hf_abcdefghijkl")
    monkeypatch.setenv("WANDB_MODE", "offline")  # not a secret: left alone
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RedactSecretsFilter())
    logger = logging.getLogger("vlmalign.test_security")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.warning("request with %s to %s", f"Bearer {KEY}", "http://host/v1?token=hf_abcdefghijkl")
        logger.warning("mode %s", "offline")
        try:
            raise RuntimeError(f"server said: bad key {KEY}")
        except RuntimeError:
            logger.exception("failed")
    finally:
        logger.removeHandler(handler)
    text = stream.getvalue()
    assert KEY not in text and "hf_abcdefghijkl" not in text
    assert "request with Bearer *** to http://host/v1?token=***" in text and "mode offline" in text
    assert "bad key ***" in text


def _yaml_nodes(node, path=""):
    if isinstance(node, dict):
        for key, value in node.items():
            yield f"{path}.{key}".lstrip("."), key, value
            yield from _yaml_nodes(value, f"{path}.{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _yaml_nodes(value, f"{path}[{index}]")


def test_no_config_turns_trust_remote_code_on():
    files = sorted(CONF.rglob("*.yaml"))
    assert files
    for path in files:
        for dotted, key, value in _yaml_nodes(yaml.safe_load(path.read_text()) or {}):
            if key == "trust_remote_code":
                assert value is False, f"{path.relative_to(CONF)}: {dotted}={value!r}"
            if isinstance(value, str) and "trust_remote_code" in value:  # overrides lists (base presets)
                assert value.endswith("=false"), f"{path.relative_to(CONF)}: {dotted}={value!r}"


def test_loader_passes_trust_remote_code_false_by_default(tmp_path, monkeypatch):
    import inspect
    from types import SimpleNamespace

    from vlmalign.models import loader, processors

    assert inspect.signature(loader.load_backbone).parameters["trust_remote_code"].default is False
    seen = []

    def fake_processor(source, **kwargs):
        seen.append(("processor", kwargs.get("trust_remote_code")))
        return object()

    def fake_model(source, **kwargs):
        seen.append(("model", kwargs.get("trust_remote_code")))
        raise OSError("no checkpoint here")

    def fake_config(source, **kwargs):  # read first where torchvision is missing (vlmalign/models/processors.py)
        seen.append(("config", kwargs.get("trust_remote_code")))
        return SimpleNamespace(model_type="llava")

    monkeypatch.setattr(processors.AutoConfig, "from_pretrained", fake_config)
    monkeypatch.setattr(processors.AutoProcessor, "from_pretrained", fake_processor)
    monkeypatch.setattr(loader.AutoModelForImageTextToText, "from_pretrained", fake_model)
    with pytest.raises(ConfigError):
        loader.load_backbone(str(tmp_path))
    assert [step for step in seen if step[0] != "config"] == [("processor", False), ("model", False)]
    assert all(trust is False for _, trust in seen)


# --- the OpenAI-compatible backend --------------------------------------------------------------------------


class _Server:
    """A local chat endpoint: answers "[]" (recording headers), or 401 echoing the Authorization header."""

    def __init__(self, status: int = 200) -> None:
        self.headers: list[dict] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                self.rfile.read(int(self.headers["Content-Length"]))
                server.headers.append(dict(self.headers))
                if status == 200:
                    payload = {"choices": [{"message": {"role": "assistant", "content": "[]"}}]}
                else:  # some proxies echo the credential they refused
                    payload = {"error": f"invalid credential: {self.headers.get('Authorization')}"}
                blob = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(blob)))
                self.end_headers()
                self.wfile.write(blob)

            def log_message(self, *args) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base_url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server(request):
    srv = _Server(getattr(request, "param", 200))
    yield srv
    srv.close()


def test_the_key_is_sent_but_never_in_the_cache_identity_or_entries(server, tmp_path, monkeypatch):
    from vlmalign.negatives import PreferenceSample

    monkeypatch.setenv("VLMALIGN_TEST_KEY", KEY)
    backend = OpenAICompatibleBackend(server.base_url, "m", api_key_env="VLMALIGN_TEST_KEY", retries=0)
    assert KEY not in repr(vars(backend))  # read from the environment per request, never stored
    builder = LLMNegativeBuilder(backend, cache_dir=tmp_path / "cache")
    builder.build(PreferenceSample("s", "What is there?", "A red mug.", "A blue mug.", image="s.jpg"))
    assert server.headers[-1]["Authorization"] == f"Bearer {KEY}"
    assert KEY not in json.dumps(backend.identity) and KEY not in json.dumps(builder.identity)
    entries = [p for p in (tmp_path / "cache").rglob("*") if p.is_file()]
    assert entries and all(KEY not in p.read_text() for p in entries)
    # another key, same model: the same cache entry (the key is not part of the cache identity)
    monkeypatch.setenv("VLMALIGN_TEST_KEY", "sk-other-key-000000")
    again = LLMNegativeBuilder(OpenAICompatibleBackend(server.base_url, "m", api_key_env="VLMALIGN_TEST_KEY"),
                               cache_dir=tmp_path / "cache")
    again.build(PreferenceSample("s", "What is there?", "A red mug.", "A blue mug.", image="s.jpg"))
    assert again.stats.cached == 1 and len(server.headers) == 1


@pytest.mark.parametrize("server", [401], indirect=True)
def test_error_messages_never_carry_the_key_even_when_the_server_echoes_it(server, monkeypatch):
    monkeypatch.setenv("VLMALIGN_TEST_KEY", KEY)
    backend = OpenAICompatibleBackend(server.base_url, "m", api_key_env="VLMALIGN_TEST_KEY", retries=0)
    with pytest.raises(BackendError) as caught:
        backend.complete("hello")
    message = str(caught.value)
    assert "HTTP 401" in message and "$VLMALIGN_TEST_KEY" in message and "Bearer ***" in message
    assert KEY not in message and caught.value.__cause__ is None and caught.value.__context__ is None


def test_a_key_passed_as_the_variable_name_is_refused_without_echoing_it():
    with pytest.raises(ConfigError) as caught:
        OpenAICompatibleBackend("http://127.0.0.1:1/v1", "m", api_key_env=KEY)
    assert KEY not in str(caught.value) and "name" in str(caught.value)


def test_credentials_in_the_url_are_masked_in_identity_and_messages():
    assert public_url("https://api.example.com/v1") == "https://api.example.com/v1"  # unchanged: same cache keys
    assert public_url("https://api.example.com/v1?api-version=2024") == "https://api.example.com/v1?api-version=2024"
    url = f"http://127.0.0.1:1/v1?api_key={KEY}&api-version=2024"
    backend = OpenAICompatibleBackend(url, "m", retries=0, timeout_s=2)
    assert KEY not in json.dumps(backend.identity) and "api_key=***" in backend.identity["base_url"]
    assert backend.url.startswith("http://127.0.0.1:1/v1/chat/completions?")  # the path goes before the query
    with pytest.raises(BackendError) as caught:
        backend.complete("hello")
    assert "cannot reach" in str(caught.value) and KEY not in str(caught.value)
    masked = OpenAICompatibleBackend("https://user:hunter2secret@api.example.com/v1", "m")
    assert "hunter2secret" not in json.dumps(masked.identity) and "user:***@" in masked.identity["base_url"]


# --- checkpoints --------------------------------------------------------------------------------------------

TINY_RUN = ["~base", "trainer.max_steps=2", "trainer.val_check_interval=2", "data.num_train_scenes=8",
            "data.num_val_scenes=2", "data.batch_size=4", "eval.num_scenes=1", "eval.max_new_tokens=2",
            "eval.batch_size=1", "callbacks.progress_bar=null", "callbacks.model_checkpoint.every_n_train_steps=2",
            "callbacks.hallucination_eval=null", "evaluate_initial=false", "scheduler.num_warmup_steps=1"]


def test_a_real_checkpoint_loads_with_weights_only(tmp_path):
    """The default objective (mDPO, frozen reference) with every default callback, optimizer and scheduler."""
    from vlmalign.train import train

    train(compose_train([*TINY_RUN, "logger=none"], tmp_path / "run", tmp_path / "cache"))
    ckpt = tmp_path / "run" / "checkpoints" / "last.ckpt"
    assert torch.serialization.get_unsafe_globals_in_checkpoint(ckpt) == []
    loaded = torch.load(ckpt, map_location="cpu", weights_only=True)
    assert loaded["global_step"] == 2 and loaded["state_dict"] and loaded["optimizer_states"]
    assert "hyper_parameters" not in loaded  # nothing beyond tensors and plain types is stored


def test_a_run_writes_no_secret_from_the_environment(tmp_path, monkeypatch):
    from omegaconf import open_dict

    from vlmalign.train import train

    monkeypatch.setenv("VLMALIGN_TEST_API_KEY", KEY)
    cfg = compose_train([*TINY_RUN, "logger=csv"], tmp_path / "run", tmp_path / "cache")
    with open_dict(cfg):
        cfg.extra = {"api_key": "${oc.env:VLMALIGN_TEST_API_KEY}"}  # a secret a config may legitimately hold
    check_no_literal_secrets(cfg)
    train(cfg)
    leaked = [p for p in Path(tmp_path / "run").rglob("*") if p.is_file() and KEY.encode() in p.read_bytes()]
    assert leaked == []


def test_the_hydra_callback_stops_a_run_before_anything_is_saved(capsys):
    from vlmalign.utils.secrets import NoLiteralSecrets

    callback = NoLiteralSecrets()
    callback.on_run_start(OmegaConf.create({"llm": {"api_key": "${oc.env:OPENAI_API_KEY}"}}))  # fine
    with pytest.raises(SystemExit) as caught:  # Hydra downgrades a callback's exceptions to warnings
        callback.on_multirun_start(OmegaConf.create({"llm": {"api_key": KEY},
                                                     "hydra": {"overrides": {"task": [f"llm.api_key={KEY}"]}}}))
    assert caught.value.code == 2
    err = capsys.readouterr().err
    assert "llm.api_key" in err and "hydra.overrides.task[0] (llm.api_key=...)" in err and KEY not in err


CANARY = "canary-4f1d2b9e7a6c3e58"  # a value no run would write by chance


def _train_cli(root: Path, *overrides: str):
    import os
    import subprocess
    import sys

    env = {**os.environ, "VLMALIGN_ROOT": str(root), "VLMALIGN_CACHE": str(root / "cache"), "OMP_NUM_THREADS": "1",
           "OPENAI_API_KEY": CANARY, "WANDB_MODE": "offline"}
    env.pop("HYDRA_FULL_ERROR", None)
    return subprocess.run([sys.executable, "-m", "vlmalign.train", *TINY_RUN, *overrides], env=env, cwd=root,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=600)


def _files_holding(root: Path, secret: str) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file() and secret.encode() in p.read_bytes()]


def test_no_secret_by_any_route_reaches_a_file_of_the_run_or_the_cache(tmp_path):
    """Through the environment into a secret-named key (the form the literal-secret refusal recommends), and into a
    URL under a harmless name: the run (wandb offline, CSV) writes neither, not in its name, hparams.yaml, the .wandb
    file or wandb's debug logs. Written out literally in a URL, it is refused before anything is saved."""
    done = _train_cli(tmp_path, "logger=wandb", "+notes.openai_api_key=${oc.env:OPENAI_API_KEY}",
                      "+notes.endpoint='https://api.example.com/v1?key=${oc.env:OPENAI_API_KEY}&page=2'")
    assert done.returncode == 0, done.stdout[-3000:]
    [run] = [p.parent for p in tmp_path.rglob("metrics.json")]
    assert list(run.rglob("*.wandb")) and list(run.rglob("hparams.yaml"))  # the files the leak was found in
    assert _files_holding(tmp_path, CANARY) == [] and CANARY not in done.stdout
    hparams = (next(run.rglob("hparams.yaml"))).read_text()
    assert "key=***&page=2" in hparams and "+notes.openai_api_key=***" in hparams  # the run name, masked

    literal = f"+notes.endpoint='https://api.example.com/v1?key={CANARY}'"
    (tmp_path / "literal").mkdir()
    refused = _train_cli(tmp_path / "literal", literal)
    assert refused.returncode == 2 and "+notes.endpoint=..., a credential in a URL" in refused.stdout, refused.stdout
    assert CANARY not in refused.stdout and _files_holding(tmp_path / "literal", CANARY) == []
