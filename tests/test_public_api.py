"""The public API: fully annotated, annotations that resolve, a lazy top-level package, ``--version``."""

import importlib
import importlib.metadata
import inspect
import json
import pkgutil
import subprocess
import sys
import typing

import activelabel

# Not held to the annotation rule: SQLAlchemy's generated model __init__(**kwargs), the command line, and
# Alembic's migration scripts.
_SKIPPED = ("activelabel.store.schema", "activelabel.cli")


def _public_modules():
    for info in pkgutil.walk_packages(activelabel.__path__, "activelabel."):
        name = info.name
        if ".migrations" in name or name.endswith("__main__") or name in _SKIPPED:
            continue
        yield importlib.import_module(name)


def _public_callables():
    """(dotted name, function) for every public function and method (``__init__`` included) named in an
    ``__all__`` of the module that defines it."""
    for mod in _public_modules():
        for name in getattr(mod, "__all__", []):
            obj = getattr(mod, name, None)
            if inspect.isfunction(obj) and obj.__module__ == mod.__name__:
                yield f"{mod.__name__}.{name}", obj
            elif inspect.isclass(obj) and obj.__module__ == mod.__name__:
                for meth_name, meth in vars(obj).items():
                    if inspect.isfunction(meth) and (not meth_name.startswith("_") or meth_name == "__init__"):
                        yield f"{mod.__name__}.{name}.{meth_name}", meth


def test_every_public_function_and_method_is_fully_annotated():
    offenders = []
    seen = 0
    for label, fn in _public_callables():
        seen += 1
        sig = inspect.signature(fn)
        bare = [p.name for p in sig.parameters.values()
                if p.name not in ("self", "cls") and p.annotation is inspect.Parameter.empty]
        no_return = sig.return_annotation is inspect.Signature.empty and fn.__name__ != "__init__"
        if bare or no_return:
            offenders.append(f"{label}: parameters {bare}" + (", no return annotation" if no_return else ""))
    assert seen > 50  # the walk found the package's API
    assert not offenders, "missing annotations:\n" + "\n".join(offenders)


def test_annotations_of_the_main_entry_points_resolve():
    from activelabel.loop.learner import ActiveLearner
    from activelabel.loop.simulate import simulate
    from activelabel.strategies.select import select_batch

    hints = typing.get_type_hints(select_batch)
    assert {"proba", "samples", "X", "labeled_mask", "exclude_mask", "random_state", "return"} <= set(hints)
    hints = typing.get_type_hints(ActiveLearner.__init__)
    assert {"model", "strategy", "batch_size", "random_state", "return"} <= set(hints)
    hints = typing.get_type_hints(simulate)
    assert {"X", "y", "model", "strategies", "return"} <= set(hints)


def test_top_level_package_has_version_and_names():
    assert activelabel.__version__ == importlib.metadata.version("activelabel")
    for name in activelabel.__all__:
        assert getattr(activelabel, name) is not None, name


def test_importing_the_package_loads_no_heavy_layer():
    code = (
        "import sys, json, activelabel\n"
        "activelabel.__version__\n"
        "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = set(json.loads(out.stdout))
    assert "activelabel" in loaded  # the check itself sees imports
    assert not loaded & {"sklearn", "sqlalchemy", "fastapi", "pandas"}


def test_python_dash_m_prints_the_version():
    out = subprocess.run([sys.executable, "-m", "activelabel", "--version"], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == f"activelabel {importlib.metadata.version('activelabel')}"
