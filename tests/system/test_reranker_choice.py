"""Which cross-encoder, or none: the same value means the same thing wherever it is given.

``RETRIEVAL_RERANKER_MODEL=`` switched reranking off while ``--reranker ''`` loaded the default
model (the flag's empty value was taken for an absent flag). The invariant: one reading of the
value, shared by the environment, the config file, constructor arguments and the ``--reranker``
flag of every subcommand that has one; a flag given beats the environment.

And the note saying reranking is off named ``RETRIEVAL_RERANKER_MODEL`` whatever the source and
showed a whitespace-only value as ''. The invariant: the note names where the value came from
and shows it as given, quoted, the same in searcher, runtime and doctor (one owner, settings.py).
"""

from __future__ import annotations

import argparse
import json
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from server.cli import build_parser
from server.doctor import check_reranker
from server.retrieval.factory import load_reranker
from server.runtime import ServerRuntime
from server.settings import CONFIG_FILE_ENV, Settings
from server.tools.instructions import reranked_domains

ENV = "RETRIEVAL_RERANKER_MODEL"
OFF = {"", "none", "off", "false"}  # README: ``none``; settings.py has always accepted these
OTHER_MODEL = "example-org/env-cross-encoder"


def _expected(value: str) -> str | None:
    name = value.strip()
    return None if name.lower() in OFF else name


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    raise AssertionError("no subcommands")


def _required_argv(parser: argparse.ArgumentParser) -> list[str]:
    """Placeholder values for a subcommand's required arguments, so it parses."""
    argv: list[str] = []
    for action in parser._actions:
        if not action.required:
            continue
        value = str(next(iter(action.choices))) if action.choices else "x"
        argv += [value] if not action.option_strings else [action.option_strings[0], value]
    return argv


PARSER = build_parser()
FLAG_COMMANDS = {
    name: sub
    for name, sub in _subparsers(PARSER).items()
    if any("--reranker" in a.option_strings for a in sub._actions)
}


def test_every_command_that_ranks_has_the_flag() -> None:
    assert {"search", "index", "eval", "demo", "doctor", "serve"} <= set(FLAG_COMMANDS)


def _from_env(value: str, mp: pytest.MonkeyPatch) -> Settings:
    mp.setenv(ENV, value)
    return Settings()


def _from_config_file(value: str, mp: pytest.MonkeyPatch) -> Settings:
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "retrieval.toml"
        config.write_text(f"reranker_model = {json.dumps(value)}\n")
        mp.setenv(CONFIG_FILE_ENV, str(config))
        return Settings()


def _from_constructor(value: str, mp: pytest.MonkeyPatch) -> Settings:
    return Settings(reranker_model=value)


def _from_flag(command: str) -> Callable[[str, pytest.MonkeyPatch], Settings]:
    def build(value: str, mp: pytest.MonkeyPatch) -> Settings:
        mp.setenv(ENV, OTHER_MODEL)  # the flag, when given, beats the environment
        argv = [command, *_required_argv(FLAG_COMMANDS[command]), "--reranker", value]
        return Settings.from_cli(PARSER.parse_args(argv))

    return build


ENTRY_POINTS: dict[str, Callable[[str, pytest.MonkeyPatch], Settings]] = {
    "env": _from_env,
    "config file": _from_config_file,
    "constructor": _from_constructor,
    **{f"{name} --reranker": _from_flag(name) for name in FLAG_COMMANDS},
}


@pytest.fixture(autouse=True)
def _no_configured_reranker(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv(ENV, raising=False)
    monkeypatch.delenv(CONFIG_FILE_ENV, raising=False)
    yield


_padding = st.text(alphabet=" \t", max_size=3)
_word = st.sampled_from(
    [*sorted(OFF), "cross-encoder/ms-marco-TinyBERT-L-2-v2", "/models/cross", "none-such/off"]
)
_case = st.sampled_from([str.lower, str.upper, str.title])
VALUES = st.builds(lambda a, w, case, b: a + case(w) + b, _padding, _word, _case, _padding)


@settings(max_examples=60, deadline=None)
@given(value=VALUES)
def test_a_value_means_the_same_at_every_entry_point(value: str) -> None:
    expected = _expected(value)
    for name, build in ENTRY_POINTS.items():
        with pytest.MonkeyPatch.context() as mp:
            configured = build(value, mp)
        reranker = load_reranker(configured)
        assert configured.reranker_model_id == expected, name
        assert (reranker.model_id if reranker else None) == expected, name
        assert configured.reranker_enabled is (expected is not None), name
        assert bool(reranked_domains(configured)) is (expected is not None), name


def test_an_absent_flag_keeps_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV, "none")
    assert Settings.from_cli(PARSER.parse_args(["doctor"])).reranker_model_id is None
    monkeypatch.setenv(ENV, OTHER_MODEL)
    assert Settings.from_cli(PARSER.parse_args(["doctor"])).reranker_model_id == OTHER_MODEL


_off_value = st.builds(
    lambda a, w, case, b: a + case(w) + b, _padding, st.sampled_from(sorted(OFF)), _case, _padding
)


def _each_source(value: str, tmp: Path, *, env_under_flag: str) -> Iterator[tuple[str, Settings]]:
    """(where the value was given, the settings) for each place it can be given: the
    environment variable, its lower-case spelling (read case-insensitively), the config file
    (its path), a constructor argument, and ``--reranker`` of every command that has it (with
    the environment variable set to ``env_under_flag`` meanwhile)."""
    for name in (ENV, ENV.lower()):
        with pytest.MonkeyPatch.context() as env:
            env.setenv(name, value)
            yield name, Settings()
    config = tmp / "retrieval.toml"
    config.write_text(f"reranker_model = {json.dumps(value)}\n")
    with pytest.MonkeyPatch.context() as env:
        env.setenv(CONFIG_FILE_ENV, str(config))
        yield str(config), Settings()
    yield "constructor", Settings(reranker_model=value)
    for command in FLAG_COMMANDS:
        with pytest.MonkeyPatch.context() as env:
            env.setenv(ENV, env_under_flag)
            argv = [command, *_required_argv(FLAG_COMMANDS[command]), "--reranker", value]
            yield "--reranker", Settings.from_cli(PARSER.parse_args(argv))


def _off_note(source: str, value: str) -> str:
    """The note expected when ``value`` from ``source`` (as :func:`_each_source` names it)
    switches reranking off."""
    if source in (ENV, ENV.lower()):
        return f"reranking is off ({source}={value!r})"
    if source == "constructor":
        return f"reranking is off (reranker_model={value!r})"
    if source == "--reranker":
        return f"reranking is off (--reranker {value!r})"
    return f"reranking is off (reranker_model = {value!r} in {source})"


@settings(max_examples=25, deadline=None)
@given(value=_off_value)
def test_the_off_note_names_the_source_and_the_value_as_given(value: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        # under the flag, the environment says "none" too: the flag's value is the one shown
        for source, configured in _each_source(value, Path(tmp), env_under_flag="none"):
            expected = _off_note(source, value)
            assert configured.reranker_off_note == expected
            [finding] = check_reranker(configured)
            assert (finding.status, finding.detail) == ("ok", expected)
            status = ServerRuntime(configured, load_reranker=False).model_status()
            assert status.reranker_note == expected


def _remedy(source: str) -> str:
    """What the unavailable note must say to change, for a model named at ``source``."""
    if source == "--reranker":
        return "pass --reranker a local cross-encoder directory, or --reranker none"
    if source == "constructor":
        return f"set {ENV} to a local cross-encoder directory"
    if source in (ENV, ENV.lower()):
        return f"set {source} to a local cross-encoder directory"
    return f"set reranker_model in {source} to a local cross-encoder directory"


def test_a_model_that_cannot_load_says_where_to_change_it(tmp_path: Path) -> None:
    """The unavailable note named RETRIEVAL_RERANKER_MODEL even when --reranker or the config
    file had named the model; it names the place the value came from."""
    value = str(tmp_path / "no-such-cross-encoder")
    # under the flag, the environment names the same model: the flag is what to change
    for source, configured in _each_source(value, tmp_path, env_under_flag=value):
        remedy = _remedy(source)
        reranker = load_reranker(configured)
        assert reranker is not None and not reranker.load()
        assert remedy in (reranker.unavailable_reason or ""), reranker.unavailable_reason
        [finding] = check_reranker(configured)
        assert remedy in finding.action  # the remedy is the action, as on every doctor line
