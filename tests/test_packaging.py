"""environment.yml and pyproject.toml must agree (names and version constraints)."""

import re
from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parents[1]


def _norm(name):
    return re.sub(r"[-_.]+", "-", name).lower()


def _split(req):
    m = re.match(r"\s*([A-Za-z0-9_.\-]+)\s*(.*)", req)
    return _norm(m.group(1)), m.group(2).replace(" ", "")


def test_environment_yml_agrees_with_pyproject():
    py = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = dict(_split(r) for r in py["dependencies"] + py["optional-dependencies"]["test"])
    conda, pip = {}, {}
    section = None
    for line in (ROOT / "environment.yml").read_text().splitlines():
        if line.startswith("dependencies:"):
            section = conda
            continue
        if section is None:
            continue
        s = line.split("#")[0].rstrip()
        if re.match(r"^\s+- pip:\s*$", s):
            section = pip
            continue
        m = re.match(r"^\s+-\s+(\S.*)$", s)
        if m and not m.group(1).startswith("-e") and m.group(1) != "pip":
            name, spec = _split(
                m.group(1).replace("=", "==", 1) if re.match(r"^[\w\-]+=[^=]", m.group(1)) else m.group(1)
            )
            section[name] = spec
    both = {**conda, **pip}
    for name, spec in wanted.items():
        assert name in both, f"{name} is in pyproject.toml but not in environment.yml"
        assert both[name] == spec, f"{name}: pyproject {spec!r} vs environment.yml {both[name]!r}"
    extra = set(both) - set(wanted) - {"python"}
    assert not extra, f"environment.yml lists packages pyproject.toml does not: {extra}"
    assert pip.get("torch") == wanted["torch"] == ">=2.4,<2.14"


def test_readme_commands_pin_torch_and_ci_runs_the_test_command():
    """The README's two commands pin torch on their own command line; .ci/run runs the test command verbatim."""
    readme = (ROOT / "README.md").read_text()
    cmds = [line for line in readme.splitlines() if line.startswith("python3 -m venv .venv")]
    assert len(cmds) == 2 and all("torch==2.13.0" in c for c in cmds)
    assert cmds[1] in (ROOT / ".ci" / "run").read_text()


def test_version_agrees_everywhere():
    import ersde_theory

    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert ersde_theory.__version__ == version
    assert f"version: {version}" in (ROOT / "CITATION.cff").read_text()
    assert f"## {version}" in (ROOT / "CHANGELOG.md").read_text()
