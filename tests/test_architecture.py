"""The package's import graph: no cycles, layers import only downwards, one home per role, the numeric path stays
sympy-free.

Layers (docs/theory.md is the spec; see README "Layout"): theory → coefficients → solvers → toys/references,
datasets, the diffusers integration → models → evaluation → studies → plots; the sample job and the CLI on top.
Imports are read from the source (module-level and function-local alike), so a cycle dodged with a local import
still counts.
"""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "ersde_theory"

# layer → the layers it may import from (besides itself)
_BASE = {"devices", "theory", "coefficients", "solvers"}
BELOW = {
    "devices": set(),
    "theory": {"devices"},
    "coefficients": {"devices", "theory"},
    "solvers": {"devices", "theory", "coefficients"},
    "toys": _BASE,
    "references": _BASE | {"toys"},
    "datasets": {"devices"},
    "diffusers_integration": _BASE,
    "models": _BASE | {"datasets", "diffusers_integration"},
    "evaluation": _BASE | {"toys", "references", "datasets", "models"},
    "studies": _BASE | {"toys", "references", "datasets", "diffusers_integration", "models", "evaluation"},
    "plots": _BASE | {"toys", "references", "datasets", "diffusers_integration", "models", "evaluation", "studies"},
    "sample_job": _BASE | {"datasets", "models"},
}
BELOW["cli"] = set(BELOW) - {"cli"}


def _modules() -> dict[str, Path]:
    mods = {}
    for path in PKG.rglob("*.py"):
        parts = ("ersde_theory",) + path.relative_to(PKG).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        mods[".".join(parts)] = path
    return mods


def import_graph() -> dict[str, set[str]]:
    """module → the package modules it imports anywhere in its source."""
    mods = _modules()
    graph = {}
    for name, path in mods.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        targets = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ImportFrom):
                base = package.split(".")[: len(package.split(".")) - node.level + 1] if node.level else []
                mod = ".".join(base + ([node.module] if node.module else [])) if node.level else node.module
                for alias in node.names:
                    full = f"{mod}.{alias.name}"
                    targets.add(full if full in mods else mod)
            elif isinstance(node, ast.Import):
                targets.update(a.name for a in node.names)
            elif isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value.startswith("."):
                targets.add(package + node.value)  # lazy exports: importlib.import_module(".x.y", package)
        graph[name] = {t for t in targets if t in mods and t != name}
    return graph


def layer(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else None


def _imported_modules(path: Path) -> set[str]:
    """Top-level names of the modules a file imports (``import a.b`` and ``from a.b import c`` give ``a``)."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            out.add(node.module.split(".")[0])
    return out


def _importers(name: str) -> list[str]:
    return sorted(p.relative_to(PKG).as_posix() for p in PKG.rglob("*.py") if name in _imported_modules(p))


def _fullnames(path: Path, name: str) -> set[str]:
    """Dotted names of the imports of ``name`` in a file (``torch.distributed``, …)."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names if a.name.split(".")[0] == name)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module and node.module.startswith(name):
            out.update([node.module, *(f"{node.module}.{a.name}" for a in node.names)])
    return out


def find_cycles(graph) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on_stack, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))
    for v in graph:
        if v not in index:
            visit(v)
    return out


def test_graph_reader_sees_local_and_relative_imports():
    g = import_graph()
    assert "ersde_theory.coefficients.ersde" in g["ersde_theory.solvers.ersde"]
    assert "ersde_theory.solvers.ersde" in g["ersde_theory"]  # a lazy export of the package
    assert "ersde_theory.solvers._common" in g["ersde_theory.solvers.baselines"]


def test_cycle_finder_finds_a_cycle():
    assert find_cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert find_cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycles():
    assert find_cycles(import_graph()) == []


def test_layers_import_only_downwards():
    bad = []
    for mod, targets in import_graph().items():
        src = layer(mod)
        if src is None or src == "__main__":
            continue
        assert src in BELOW, f"{mod}: module outside the known layers {sorted(BELOW)}"
        for t in targets:
            dst = layer(t)
            if dst is not None and dst != src and dst not in BELOW[src]:
                bad.append(f"{mod} -> {t}")
    assert not bad, "upward imports:\n" + "\n".join(sorted(bad))


def test_diffusers_is_imported_only_by_its_integration():
    """One home for the diffusers integration: no module outside ``diffusers_integration/`` imports diffusers (the
    models and studies that use it go through that folder), and the folder's face does not import it eagerly."""
    users = _importers("diffusers")
    assert users and all(u.startswith("diffusers_integration/") for u in users), users
    assert "diffusers_integration/__init__.py" not in users


def test_torch_distributed_is_imported_only_by_the_sample_job():
    users = [p.relative_to(PKG).as_posix() for p in PKG.rglob("*.py") if any(
        n.startswith("torch.distributed") for n in _fullnames(p, "torch"))]  # fmt: skip
    assert users == ["sample_job.py"], users


def test_one_home_per_role():
    """Each role has one home: the sampler registry beside the samplers, the report table writer in the report
    writer, plots that only draw (no ``run_*`` there), and no grab-bag ``images`` layer."""
    defs = {}
    for path in PKG.rglob("*.py"):
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.FunctionDef | ast.ClassDef):
                defs.setdefault(node.name, []).append(path.relative_to(PKG).as_posix())
            elif isinstance(node, ast.Assign | ast.AnnAssign):
                for target in node.targets if isinstance(node, ast.Assign) else [node.target]:
                    if isinstance(target, ast.Name):
                        defs.setdefault(target.id, []).append(path.relative_to(PKG).as_posix())
    assert defs["markdown_table"] == ["evaluation/reports.py"]
    assert defs["SAMPLERS"] == ["solvers/registry.py"] and defs["available_samplers"] == ["solvers/registry.py"]
    assert defs["frechet_distance"] == ["evaluation/frechet.py"] and defs["parse_nsf"] == ["theory/nsf.py"]
    assert defs["resolve_device"] == ["devices.py"]
    plot_runs = [n for n, where in defs.items() if n.startswith("run_") and any(w.startswith("plots/") for w in where)]
    assert not plot_runs, plot_runs
    assert not (PKG / "images").exists()


def test_cli_choice_lists_are_the_registries():
    """The command line restates no choice list: its choices are the registries' own objects or their keys."""
    from ersde_theory.cli import build_parser
    from ersde_theory.coefficients.ersde import QUADRATURES
    from ersde_theory.solvers.plan import DERIVATIVES, ORDERS

    sub = {a.dest: a for a in build_parser()._actions if a.dest == "command"}["command"].choices["sample"]
    choices = {a.dest: a.choices for a in sub._actions}
    assert choices["quadrature"] is QUADRATURES and "comfyui_f64" in choices["quadrature"]
    assert choices["derivatives"] is DERIVATIVES and choices["order"] is ORDERS


def test_symbolic_layer_does_not_import_the_nsf_registry():
    g = import_graph()
    bad = [m for m, t in g.items() if m.startswith("ersde_theory.theory.symbolic") and "ersde_theory.theory.nsf" in t]
    assert not bad


CHECK = """
import sys, torch
import ersde_theory as et
sig = et.get_sigmas_karras(6, 0.002, 80.0)
x = 80.0 * torch.randn(4, 2, dtype=torch.float64)
for name in et.NSF_NAMES:
    et.ersde_coefficients(sig, name)
    et.sample_er_sde(et.ring_2d(), x, sig, nsf=name, disable=True)
et.ersde_coefficients(sig, et.power_nsf(1.3))
print(sorted(m for m in ("sympy", "mpmath") if m in sys.modules))
"""


def test_numeric_path_loads_neither_sympy_nor_mpmath():
    out = subprocess.run([sys.executable, "-c", CHECK], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr


def test_symbolic_nsf_does_load_sympy():
    """The check above can fail: a sympy-expression NSF does load sympy."""
    code = "import sys, ersde_theory as et, sympy as sp; et.resolve_nsf(et.SIGMA**sp.Rational(3, 2)); print('ok')"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.stdout.strip() == "ok", out.stderr


@pytest.mark.parametrize("args", [["--help"], ["sample", "--help"]])
def test_cli_help_is_light(args):
    code = (
        f"import sys, runpy; sys.argv = ['ersde_theory'] + {args!r}\n"
        "try:\n    runpy.run_module('ersde_theory', run_name='__main__')\nexcept SystemExit:\n    pass\n"
        "print(sorted(m for m in ('sympy', 'mpmath', 'matplotlib', 'diffusers') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "[]", out.stdout[-2000:] + out.stderr[-2000:]
