"""The docs stay true to the code: every `python -m experiments.…`, `python -m benchmarks.…` and
`python scripts/….py` command in README.md, docs/, benchmarks/RESULTS.md and weights/README.md parses
with that command's own parser (nothing runs), every project file and link they name exists, the README
is a map that reaches every page, and the site builds in mkdocs' strict mode (no broken link or anchor)."""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import io
import json
import os
import pathlib
import re
import shlex
import subprocess
import sys

import pytest

from dfijax import config

ROOT = pathlib.Path(__file__).resolve().parents[1]
DOCS = sorted((ROOT / "docs").glob("*.md"))
PAGES = [ROOT / "README.md", *DOCS, ROOT / "benchmarks" / "RESULTS.md", ROOT / "weights" / "README.md"]
PROJECT_DIRS = ("dfijax/", "experiments/", "tests/", "benchmarks/", "scripts/", "notebooks/", "docs/", ".ci/")
PROJECT_FILES = ("pyproject.toml", "mkdocs.yml", "README.md")
MODULE = re.compile(r"^(experiments|benchmarks)\.(\w+)$")
SCRIPT = re.compile(r"^scripts/(\w+)\.py$")


@dataclasses.dataclass(frozen=True)
class Command:
    page: str
    line: int
    module: str  # experiments.alpha_sweep, benchmarks.bench_inversion, scripts.fetch_vgg19
    argv: tuple[str, ...]

    def __str__(self) -> str:
        return f"{self.page}:{self.line}: python {self.module} {' '.join(self.argv)}"


def _strip_fences(text: str) -> str:
    """The text with fenced code blocks blanked (line numbers kept)."""
    return re.sub(r"```.*?```", lambda m: "\n" * m.group(0).count("\n"), text, flags=re.S)


def _commands_in(words: list[str], page: str, line: int) -> list[Command]:
    """The commands in one shell line's words, also inside a quoted --command "…" (gcloud ssh)."""
    found = []
    for i, w in enumerate(words):
        if w not in ("python", "python3") and ("python -m " in w or "python scripts/" in w):
            found += _commands_in(shlex.split(w.split("&&")[-1]), page, line)  # a quoted remote command
        if w not in ("python", "python3") or i + 1 >= len(words):
            continue
        nxt = words[i + 1]
        if nxt == "-m" and i + 2 < len(words) and MODULE.match(words[i + 2]):
            found.append(Command(page, line, words[i + 2], tuple(_until_end(words[i + 3 :]))))
        elif script := SCRIPT.match(nxt):
            found.append(Command(page, line, f"scripts.{script.group(1)}", tuple(_until_end(words[i + 2 :]))))
    return found


def _until_end(words: list[str]) -> list[str]:
    """A command's words up to a shell operator (&&, |, ;) or a redirection."""
    out = []
    for w in words:
        if w in ("&&", "||", "|", ";", ">", "2>&1") or w.startswith(">"):
            break
        out.append(w)
    return out


def documented_commands(path: pathlib.Path) -> list[Command]:
    """Every command of a page: in code lines (indented or fenced) and in inline code spans."""
    text, page, found = path.read_text(), path.relative_to(ROOT).as_posix(), []
    lines = text.splitlines()
    for n, raw in enumerate(lines, 1):
        if re.match(r"^\s*(\S+=\S+\s+)*(python3?|gcloud)\s", raw):
            k = n
            while raw.endswith("\\") and k < len(lines):  # a command continued on the next line
                raw, k = raw[:-1] + lines[k], k + 1
            found += _commands_in(shlex.split(raw, comments=True), page, n)
    prose = _strip_fences(text)
    for m in re.finditer(r"`([^`]+)`", prose):
        span = " ".join(m.group(1).split())
        if span.startswith(("python -m experiments.", "python -m benchmarks.", "python scripts/")):
            found += _commands_in(shlex.split(span), page, prose.count("\n", 0, m.start()) + 1)
    return found


ALL_COMMANDS = [c for p in PAGES for c in documented_commands(p)]


def _parse(cmd: Command, tmp_path: pathlib.Path) -> None:
    """Parse with the command's own `parse`; a --config file named in the docs is replaced by a saved
    config of that experiment (the docs' `<time>` folder does not exist here)."""
    module = importlib.import_module(cmd.module)
    argv = list(cmd.argv)
    if "--config" in argv:
        i = argv.index("--config") + 1
        saved = tmp_path / "config.json"
        saved.write_text(json.dumps(config.to_dict(module.parse([]).config)))
        argv[i] = str(saved)
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            module.parse(argv)
    except SystemExit as e:
        if not (e.code == 0 and "--help" in argv):
            pytest.fail(f"{cmd}\ndoes not parse (exit {e.code}): {err.getvalue().strip()[-600:]}")
    except ValueError as e:
        pytest.fail(f"{cmd}\nis refused: {e}")


def test_the_docs_hold_the_commands_a_reader_types():
    """The extraction itself: the main commands of each system are found, inline and in code blocks,
    so a page that lost them (or an extractor that finds nothing) fails here."""
    modules = {c.module for c in ALL_COMMANDS}
    for name in ("alpha_sweep", "dfi_dataset", "studio", "style_transfer", "video_style", "train_fast_style"):
        assert f"experiments.{name}" in modules
    for name in ("stylize", "train_dtn", "train_dtn_faces", "train_fusion", "fuse", "invert_features"):
        assert f"experiments.{name}" in modules
    assert {"benchmarks.bench_inversion", "scripts.fetch_vgg19", "scripts.convert_vgg19"} <= modules
    assert len(ALL_COMMANDS) >= 60, len(ALL_COMMANDS)
    inline = [c for c in ALL_COMMANDS if c.page == "docs/dfi.md" and "--no-probe" in c.argv]
    assert len(inline) == 2  # the two measured commands of the references' presets
    remote = [c for c in ALL_COMMANDS if "--coordinator" not in c.argv and "/mnt/fusion" in c.argv]
    assert remote and remote[0].module == "experiments.train_fusion"  # inside gcloud's quoted --command


@pytest.mark.parametrize("page", [p.relative_to(ROOT).as_posix() for p in PAGES])
def test_every_documented_command_parses(page, tmp_path):
    for cmd in (c for c in ALL_COMMANDS if c.page == page):
        _parse(cmd, tmp_path)


def test_a_renamed_flag_in_the_docs_fails(tmp_path):
    """The check bites: a documented command with a flag the parser does not know is reported."""
    cmd = Command("docs/dfi.md", 1, "experiments.alpha_sweep", ("--edit", "Smiling+", "--alpha-list", "0.1"))
    with pytest.raises(pytest.fail.Exception, match="does not parse"):
        _parse(cmd, tmp_path)
    cmd = Command("docs/benchmarks.md", 1, "benchmarks.bench_inversion", ("--variants", "x"))
    with pytest.raises(pytest.fail.Exception, match="does not parse"):
        _parse(cmd, tmp_path)


def _slug(heading: str) -> str:
    from markdown.extensions.toc import slugify

    return slugify(heading, "-")


def _anchors(path: pathlib.Path) -> set[str]:
    return {_slug(m.group(1)) for m in re.finditer(r"^#+ (.+)$", _strip_fences(path.read_text()), re.M)}


@pytest.mark.parametrize("page", [p.relative_to(ROOT).as_posix() for p in PAGES])
def test_files_and_links_the_docs_name_exist(page):
    path = ROOT / page
    text = _strip_fences(path.read_text())
    missing = []
    for m in re.finditer(r"`([^`\s]+)`", text):
        name = m.group(1).rstrip(".,;:")
        if re.search(r"[<>*{}]", name) or not (name.startswith(PROJECT_DIRS) or name in PROJECT_FILES):
            continue
        if not (ROOT / name.split(":")[0]).exists():
            missing.append(name)
    for m in re.finditer(r"\]\(([^)\s]+)\)", text):
        target, _, anchor = m.group(1).partition("#")
        if re.match(r"^[a-z]+://", target):
            continue
        dest = (path.parent / target).resolve() if target else path
        if not dest.exists():
            missing.append(m.group(1))
        elif anchor and dest.suffix == ".md" and anchor not in _anchors(dest):
            missing.append(f"{m.group(1)} (no such heading)")
    assert not missing, f"{page} names what does not exist: {missing}"


def test_the_readme_is_a_map_that_reaches_every_page():
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) <= 160, "README.md is the map: a topic's detail goes to its docs/ page"
    linked = set(re.findall(r"\]\((docs/[\w-]+\.md)", readme))
    assert {f"docs/{p.name}" for p in DOCS} <= linked, sorted({f"docs/{p.name}" for p in DOCS} - linked)
    nav = (ROOT / "mkdocs.yml").read_text()
    assert {p.name for p in DOCS} <= set(re.findall(r": ([\w-]+\.md)$", nav, re.M))


def test_the_site_builds_without_a_warning(tmp_path):
    pytest.importorskip("mkdocs", reason="the docs extra: pip install -e '.[docs]'")
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    r = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-q", "-d", str(tmp_path / "site")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr[-2000:]
    for page in DOCS:
        assert (tmp_path / "site" / ("" if page.stem == "index" else page.stem) / "index.html").exists(), page
