"""Every setting is declared once: each environment variable in config/variables.py, each training
parameter's help in training/params.py. The README's two tables are their generators' output, every
TASVEER_* / LABEL_STUDIO_* / REDIS_URL name in the product code is declared, nothing outside config/
reads one raw, and a variable set in a mode where it cannot work stops the process at start."""

from __future__ import annotations

import argparse
import ast
import dataclasses
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from backend.settings import Settings, SettingsError, fields_stub
from config.env import BY_FIELD, BY_NAME, basic_auth, environment
from config.markdown import BEGIN as SETTINGS_BEGIN
from config.markdown import END as SETTINGS_END
from config.spec import render
from config.variables import RULES, VARIABLES
from training.params import TrainParams, help_of
from training.paramtable import BEGIN as PARAMS_BEGIN
from training.paramtable import END as PARAMS_END

REPO = Path(__file__).resolve().parents[1]
PRODUCT = ("training", "lsproto", "backend", "sync", "cli", "config")
NAME = re.compile(r"\b(?:TASVEER_[A-Z0-9_]*[A-Z0-9]|LABEL_STUDIO_[A-Z0-9_]*[A-Z0-9]|REDIS_URL)\b")
PREFIXES = ("TASVEER_", "LABEL_STUDIO_", "REDIS_URL")


def product_files():
    for package in PRODUCT:
        yield from sorted((REPO / package).rglob("*.py"))


def readme_block(begin: str, end: str) -> str:
    text = (REPO / "README.md").read_text()
    assert text.count(begin) == 1 and text.count(end) == 1, f"README.md must hold {begin!r} once"
    return text[text.index(begin) : text.index(end) + len(end)]


@pytest.mark.parametrize(
    "command, begin, end",
    [
        (["-m", "config", "--markdown"], SETTINGS_BEGIN, SETTINGS_END),
        (["-m", "training.paramtable"], PARAMS_BEGIN, PARAMS_END),
    ],
    ids=["settings", "parameters"],
)
def test_the_readme_tables_are_what_the_declarations_generate(command, begin, end):
    proc = subprocess.run([sys.executable, *command], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert readme_block(begin, end) == proc.stdout.rstrip("\n"), (
        f"README.md's table is stale: paste the output of `python {' '.join(command)}`"
    )


def test_every_variable_named_in_the_code_is_declared():
    named = {}
    for path in product_files():
        for name in NAME.findall(path.read_text()):
            named.setdefault(name, path.relative_to(REPO).as_posix())
    undeclared = {name: where for name, where in named.items() if name not in BY_NAME}
    assert not undeclared, f"declare these in config/variables.py: {undeclared}"
    assert len(named) > 25  # the scan sees the backend's settings


def raw_reads(path: Path) -> list[str]:
    """`x.get("TASVEER_...")`, `getenv("TASVEER_...")`, `environ["TASVEER_..."]` and the like."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        key = None
        if isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
            func = node.func
            if (func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")) in (
                "get",
                "getenv",
                "pop",
                "setdefault",
            ):
                key = node.args[0].value
        elif (
            isinstance(node, ast.Subscript) and isinstance(node.ctx, ast.Load) and isinstance(node.slice, ast.Constant)
        ):
            key = node.slice.value
        if isinstance(key, str) and key.startswith(PREFIXES):
            found.append(f"{path.relative_to(REPO)}:{node.lineno}: {ast.unparse(node)}")
    return found


def test_only_config_reads_the_variables():
    reads = [r for path in product_files() if path.parts[-2] != "config" for r in raw_reads(path)]
    assert not reads, "read these through config.env (read, basic_auth, Settings):\n" + "\n".join(reads)


def test_config_is_a_leaf():
    for path in (REPO / "config").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
                assert not any(n.split(".")[0] in PRODUCT[:-1] for n in names), f"{path.name} imports {names}"


def test_settings_are_the_declared_backend_variables():
    assert [f.name for f in dataclasses.fields(Settings)] == list(BY_FIELD)
    assert all(var.help and var.readers for var in VARIABLES)
    given = {
        "TASVEER_DATA_DIR": "/srv/t",
        "TASVEER_PORT": "9191",
        "TASVEER_ALLOWED_HOSTS": "A.example, cdn:81",
        "TASVEER_OPEN_HEALTH": "yes",
        "TASVEER_ENGINE": "ONNX",
        "REDIS_URL": "redis://r:6379/0",
        "TASVEER_RQ_GRACE": "5",
        "TASVEER_FETCH_TIMEOUT": "2.5",
        "LABEL_STUDIO_URL": "http://ls:8080/",
    }
    settings = Settings.from_env(given)
    assert settings.data_dir == Path("/srv/t") and settings.port == 9191 and settings.open_health
    assert settings.allowed_hosts == ("a.example", "cdn:81") and settings.engine == "onnx"
    assert settings.rq_grace == 5 and settings.fetch_timeout == 2.5 and settings.label_studio_url == "http://ls:8080"
    env = settings.to_env()
    assert set(env) == {var.name for var in BY_FIELD.values()}
    assert Settings.from_env(env) == settings  # what child processes get reads back the same
    assert env["TASVEER_HOST"] == "" and env["TASVEER_PORT"] == "9191"  # defaults are written unset
    assert Settings.from_env({}) == Settings()


def test_the_settings_types_are_what_the_declarations_generate():
    # type checkers read Settings' fields from a block of backend/settings.py generated from the
    # declarations (their kind, and None where the default is None)
    text = (REPO / "backend" / "settings.py").read_text()
    assert f"\n{fields_stub()}\n" in text, (
        "backend/settings.py's fields block is stale: paste the output of `python -m backend.settings`"
    )


def test_the_engines_are_trainings():
    from training.serving import ENGINES

    assert BY_NAME["TASVEER_ENGINE"].choices == ENGINES


def sample(rule) -> str:
    """A value of the rule's variable that the rule refuses."""
    var = BY_NAME[rule.name]
    value = var.default if rule.when(var.default) else var.default + 1
    return render(var, value)


@pytest.mark.parametrize("rule", RULES, ids=[r.name for r in RULES])
def test_a_variable_that_cannot_work_in_a_mode_is_refused_naming_both(rule):
    other = {"REDIS_URL": "redis://127.0.0.1:6379/0"}[rule.other]
    refused = {rule.name: sample(rule), **({rule.other: other} if rule.other_set else {})}
    with pytest.raises(SettingsError) as caught:
        Settings.from_env(refused)
    assert rule.name in str(caught.value) and rule.other in str(caught.value)
    fine = {rule.name: sample(rule), **({} if rule.other_set else {rule.other: other})}
    Settings.from_env(fine)  # the other mode takes it


def test_train_min_interval_is_refused_with_redis_and_the_backend_does_not_start():
    with pytest.raises(SettingsError, match="TASVEER_TRAIN_MIN_INTERVAL=5 cannot work with REDIS_URL set"):
        Settings.from_env({"TASVEER_TRAIN_MIN_INTERVAL": "5", "REDIS_URL": "redis://127.0.0.1:6379/0"})
    env = {**os.environ, "TASVEER_TRAIN_MIN_INTERVAL": "5", "REDIS_URL": "redis://127.0.0.1:1/0"}
    proc = subprocess.run(
        [sys.executable, "-m", "backend"], env=env, cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 2 and "TASVEER_TRAIN_MIN_INTERVAL" in proc.stderr and "REDIS_URL" in proc.stderr


def test_a_bad_value_names_its_variable():
    for env, match in [
        ({"TASVEER_PORT": "ninety"}, "TASVEER_PORT must be a whole number"),
        ({"TASVEER_OPEN_HEALTH": "maybe"}, "TASVEER_OPEN_HEALTH must be 1 or 0"),
        ({"TASVEER_LOG_LEVEL": "loud"}, "TASVEER_LOG_LEVEL must be one of"),
        ({"TASVEER_TRAIN_MIN_INTERVAL": "-1"}, "TASVEER_TRAIN_MIN_INTERVAL must be >= 0"),
    ]:
        with pytest.raises(SettingsError, match=match):
            Settings.from_env(env)


def test_basic_auth_means_the_same_everywhere():
    from cli.up import backend_credentials

    both = {"TASVEER_BASIC_AUTH_USER": "u", "TASVEER_BASIC_AUTH_PASSWORD": "p"}
    assert basic_auth(both) == Settings.from_env(both).basic_auth == backend_credentials(both)[0] == ("u", "p")
    assert basic_auth({}) is None and backend_credentials({}) == (None, None)
    for one in ({"TASVEER_BASIC_AUTH_USER": "u"}, {"TASVEER_BASIC_AUTH_PASSWORD": "p"}):
        for reader in (basic_auth, Settings.from_env, backend_credentials):
            with pytest.raises(SettingsError, match="set together"):
                reader(one)


def test_the_backend_child_gets_its_settings_from_the_declarations(tmp_path):
    from sync.backendproc import BackendServer

    server = BackendServer(
        tmp_path,
        9555,
        label_studio_url="http://127.0.0.1:8080",
        label_studio_token="tok",
        label_studio_media_dir=tmp_path / "media",
    )
    settings = Settings.from_env(server.environment())
    assert (settings.data_dir, settings.port, settings.label_studio_url) == (tmp_path, 9555, "http://127.0.0.1:8080")
    assert settings.label_studio_api_key == "tok" and settings.ls_media_dir == tmp_path / "media"
    assert environment({"port": 9555}) == {"TASVEER_PORT": "9555"}


# -- training parameters -------------------------------------------------------------------------------
def test_every_parameter_has_its_help():
    for name in TrainParams.names():
        meta = help_of(name)
        assert meta["label"] and len(meta["help"]) > 10, name


def test_the_form_shows_the_parameters_help_and_the_registry_backbones():
    from backend.ui.html import esc
    from backend.ui.params_form import FIELDS, params_section
    from training.backbone_names import NAMES
    from training.backbones import REGISTRY

    assert tuple(REGISTRY) == NAMES
    html = params_section("1", {})
    for name, _ in FIELDS:
        assert esc(help_of(name)["label"]) in html and esc(help_of(name)["help"]) in html, name
    assert all(f"<option{' selected' if n == TrainParams().model else ''}>{n}</option>" in html for n in NAMES)


def test_the_form_offers_the_backbones_without_importing_torch():
    code = (
        "import sys; from backend.ui.params_form import params_section; html = params_section('1', {}); "
        "assert 'efficientnet_lite0' in html and 'torch' not in sys.modules, sorted(sys.modules)"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]


def test_tasveer_train_flags_carry_the_parameters_help():
    from cli import train

    parser = train.register(argparse.ArgumentParser().add_subparsers())
    helps = {a.dest: a.help for a in parser._actions}
    for name in train.PARAM_FLAGS:
        assert help_of(name)["help"].replace("%", "%%") in helps[name], name
