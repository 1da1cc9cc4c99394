"""The README is a front door (short, links to every docs page) and the docs hold together: every relative link
points at an existing file and heading, the set-up commands are the ones CI runs, and every `run_infer.py` /
`run_bench.py` command shown composes into a valid configuration."""

from __future__ import annotations

import importlib.util
import re
import runpy
import subprocess
from functools import lru_cache
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.config_store import ConfigStore
from hydra.core.override_parser.overrides_parser import OverridesParser

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
# The pages checked here: the README and every docs page.
PAGES = [README, *sorted((ROOT / "docs").glob("*.md"))]
ENTRY_CONFIGS = {"run_infer.py": "infer", "run_bench.py": "bench"}

LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
FENCE = re.compile(r"^```.*?^```", re.S | re.M)


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[`*_]", "", heading.strip().lower())
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def _anchors(page: Path) -> set[str]:
    text = FENCE.sub("", page.read_text())
    return {_slug(m.group(1)) for m in re.finditer(r"^#{1,6}\s+(.+)$", text, re.M)}


def _links(page: Path) -> list[str]:
    return [m.group(1) for m in LINK.finditer(FENCE.sub("", page.read_text()))]


def _commands(page: Path) -> list[str]:
    """The shell commands shown on a page: indented code lines, backslash continuations joined, comments kept."""
    commands: list[str] = []
    pending = ""
    for line in FENCE.sub("", page.read_text()).splitlines():
        if not line.startswith("    ") and not pending:
            continue
        line = pending + line.strip()
        pending = line[:-1] + " " if line.endswith("\\") else ""
        if not pending:
            commands.append(line)
    return commands


def _entry_commands() -> list[tuple[str, str]]:
    return [
        (f"{page.name}: {command}", command)
        for page in PAGES
        for command in _commands(page)
        if command.split(maxsplit=2)[1:2] and command.split()[0] == "python" and command.split()[1] in ENTRY_CONFIGS
    ]


def test_readme_is_a_front_door():
    lines = README.read_text().splitlines()
    assert len(lines) <= 200, f"README.md has {len(lines)} lines; move detail to docs/"
    linked = {Path(link.split("#")[0]).name for link in _links(README) if link.startswith("docs/")}
    pages = {page.name for page in (ROOT / "docs").glob("*.md")}
    assert pages <= linked, f"docs pages missing from the README: {sorted(pages - linked)}"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_relative_links_resolve(page):
    broken = []
    for link in _links(page):
        if re.match(r"[a-z]+:", link):
            continue  # http(s), mailto: not checked offline
        path, _, anchor = link.partition("#")
        target = (page.parent / path).resolve() if path else page
        if not target.exists():
            broken.append(link)
        elif anchor and target.suffix == ".md" and anchor not in _anchors(target):
            broken.append(link)
    assert not broken, f"{page.name}: broken links {broken}"


def test_readme_set_up_is_what_ci_runs():
    ci = (ROOT / ".ci" / "run").read_text()
    install, tests = [line.strip() for line in README.read_text().splitlines()[2:4]]
    assert tests in ci.splitlines()[-1], "the README's test command differs from the last line of .ci/run"
    for requirement in re.findall(r"pip install (?:-e )?(\S+)", install):
        assert f"install -q {'-e ' if '[' in requirement else ''}{requirement}" in ci, requirement


def _module_exists(module: str) -> bool:
    """A module of this checkout is looked up as a file (an installed copy of vda must not answer for it)."""
    path = ROOT.joinpath(*module.split("."))
    if (ROOT / module.split(".")[0]).is_dir():
        return path.with_suffix(".py").is_file() or (path / "__main__.py").is_file()
    return importlib.util.find_spec(module) is not None


def test_documented_modules_and_scripts_exist():
    """``python -m MODULE``, ``python FILE`` and ``bash FILE`` name modules and files that exist."""
    missing = []
    for page in PAGES:
        for command in _commands(page):
            for module in re.findall(r"python -m ([\w.]+)", command):
                if not _module_exists(module):
                    missing.append(f"{page.name}: {module}")
            for script in re.findall(r"(?:python|bash) ((?:\w+/)*\w+\.(?:py|sh))\b", command):
                if not (ROOT / script).exists():
                    missing.append(f"{page.name}: {script}")
    assert not missing, missing


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_named_paths_exist(page):
    """Every `vda/...`, `tests/...`, `benchmarks/...` or `conf/...` path a page names exists (globs allowed)."""
    named = set(re.findall(r"`((?:vda|benchmarks|tests|conf)/[^`\s]*)`", page.read_text()))
    missing = [path for path in sorted(named) if not list(ROOT.glob(path.rstrip("/")))]
    assert not missing, f"{page.name} names paths that do not exist: {missing}"


@lru_cache(maxsize=None)
def _register(script: str) -> None:
    runpy.run_path(str(ROOT / script), run_name="vda_docs_check")  # registers the script's structured configs


def _overrides(command: str) -> tuple[str, list[str], dict[str, list[str]]]:
    """The entry script of ``command``, its overrides as the shell passes them (a sweep takes its first value),
    and every value each swept config group takes."""
    arguments = command.split(maxsplit=2)[2] if len(command.split()) > 2 else ""
    words = subprocess.run(
        ["bash", "-c", f"printf '%s\\0' {arguments}"], capture_output=True, text=True, check=True, cwd=ROOT
    ).stdout.split("\0")[:-1]
    overrides = [word for word in words if word not in ("", "-m", "--cfg", "job", "--help")]
    parsed = OverridesParser.create().parse_overrides(overrides)
    swept = {o.get_key_element(): list(o.sweep_string_iterator()) for o in parsed if o.is_sweep_override()}
    first = [f"{o.get_key_element()}={swept[o.get_key_element()][0]}" if o.is_sweep_override() else o.input_line
             for o in parsed]
    return command.split()[1], first, swept


@pytest.mark.parametrize("where, command", _entry_commands(), ids=[w for w, _ in _entry_commands()])
def test_documented_commands_compose(where, command):
    script, overrides, swept = _overrides(command)
    _register(script)
    store = ConfigStore.instance().repo
    for group, values in swept.items():
        if group in store:  # a swept config group: every value is a registered record
            unknown = [value for value in values if f"{value}.yaml" not in store.get(group, {})]
            assert not unknown, f"{group}: no such choice {unknown}"
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        hydra_settings = any(override.startswith("hydra") for override in overrides)  # launchers: slower to compose
        compose(ENTRY_CONFIGS[script], overrides=overrides, return_hydra_config=hydra_settings)
