"""One error tree: every MloopError is defined in mloop.errors and drawn in its docstring; cli gives
each its exit code and serve each HTTP problem its status, and both tables keep their numbers."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re
from types import ModuleType

import pytest

import mloop
from mloop import errors
from mloop.cli import main as cli_main
from mloop.cli.main import EXIT_CODES, exit_code
from mloop.errors import MloopError
from mloop.export.stages import NO_TRAFFIC_EXIT_CODE

# Optional extras a module may import at its top; without them the module is skipped, not failed.
OPTIONAL_MODULES = {"kfp", "kfp_kubernetes", "dvc", "dvc_s3", "psycopg", "lightgbm", "xgboost", "s3fs", "fsspec"}
# Exceptions defined outside mloop.errors on purpose: internal signals no user ever sees.
INTERNAL_EXCEPTIONS = {"mloop.serve.fastpath.NotCompilable"}

# Every current exit code: scripts, the exported Airflow DAGs and Kubeflow pipelines depend on them.
EXPECTED_EXIT_CODES = {
    "MloopError": 1,
    "ConfigError": 2,
    "ExportError": 2,
    "SourceError": 3,
    "ContractError": 4,
    "PredictionLogError": 8,
    "DuplicateRequestId": 8,
    "ProfileError": 9,
    "TrainError": 5,
    "TrackingError": 6,
    "RegistryError": 7,
    "AuditChainBroken": 7,
    "ServeError": 8,
    "HTTPProblem": 8,
    "InvalidInput": 8,
    "InconsistentInput": 8,
    "UnknownRequestIds": 8,
    "NotFound": 8,
    "PayloadTooLarge": 8,
    "UnsupportedMediaType": 8,
    "Unauthorized": 8,
    "TokenServiceDown": 8,
    "ModelUnavailable": 8,
    "StreamError": 8,
    "MonitorError": 9,
    "RetrainError": 10,
    "LockBusy": 10,
}
EXPECTED_STATUS = {
    "InvalidInput": 422,
    "InconsistentInput": 400,
    "UnknownRequestIds": 404,
    "NotFound": 404,
    "PayloadTooLarge": 413,
    "UnsupportedMediaType": 415,
    "Unauthorized": 401,
    "TokenServiceDown": 503,
    "ModelUnavailable": 503,
}


def _package_modules() -> list[ModuleType]:
    modules = [mloop]
    for info in pkgutil.walk_packages(mloop.__path__, "mloop."):
        if info.name.endswith(".__main__"):  # runs the CLI when imported
            continue
        try:
            modules.append(importlib.import_module(info.name))
        except ImportError as exc:
            if (exc.name or "").split(".", 1)[0] not in OPTIONAL_MODULES:
                raise
    return modules


MODULES = _package_modules()


def _all_subclasses(cls: type[BaseException]) -> set[type[BaseException]]:
    found: set[type[BaseException]] = set()
    pending = [cls]
    while pending:
        for sub in pending.pop().__subclasses__():
            if sub not in found:
                found.add(sub)
                pending.append(sub)
    return found


def _package_errors() -> set[type[MloopError]]:
    """MloopError and each subclass defined by mloop itself (not by a test), at module level or anywhere."""
    return {MloopError} | {cls for cls in _all_subclasses(MloopError) if cls.__module__.split(".", 1)[0] == "mloop"}


def _drawn_tree() -> dict[str, str | None]:
    """Each class name drawn in the errors docstring and the name it hangs under."""
    assert errors.__doc__ is not None
    drawn: dict[str, str | None] = {}
    path: list[str] = []
    lines = [line for line in errors.__doc__.splitlines() if line.strip()]
    root = next(index for index, line in enumerate(lines) if line.strip() == "MloopError")
    indent = len(lines[root]) - len(lines[root].lstrip())
    for line in lines[root:]:
        match = re.match(r"^(?P<branch>[│├└─ ]*)(?P<name>[A-Z]\w*)\b", line[indent:])
        if match is None or not set(line[:indent]) <= {" "}:
            break
        depth = len(match["branch"]) // 4
        assert depth <= len(path), f"{match['name']} is drawn deeper than the line above it"
        del path[depth:]
        drawn[match["name"]] = path[-1] if path else None
        path.append(match["name"])
    return drawn


def test_every_error_class_is_defined_in_mloop_errors() -> None:
    elsewhere = sorted(
        f"{cls.__module__}.{cls.__qualname__}" for cls in _package_errors() if cls.__module__ != "mloop.errors"
    )
    assert not elsewhere, f"define these in mloop/errors.py: {elsewhere}"
    exported = {
        name for name, value in vars(errors).items() if inspect.isclass(value) and issubclass(value, MloopError)
    }
    assert exported == set(errors.__all__)


def test_no_module_defines_its_own_exception_classes() -> None:
    own = {
        f"{module.__name__}.{name}"
        for module in MODULES
        if module.__name__ != "mloop.errors"
        for name, value in vars(module).items()
        if inspect.isclass(value) and issubclass(value, BaseException) and value.__module__ == module.__name__
    }
    assert own == INTERNAL_EXCEPTIONS


def test_the_docstring_draws_the_class_tree() -> None:
    drawn = _drawn_tree()
    classes = {cls.__name__: cls for cls in _package_errors()}
    assert set(drawn) == set(classes), "the docstring of mloop/errors.py must draw every error class, and only them"
    for name, parent in drawn.items():
        cls = classes[name]
        bases = [base.__name__ for base in cls.__bases__]
        assert bases == ([parent] if parent else ["Exception"]), (
            f"{name} is drawn under {parent}, but its bases are {bases}"
        )


def test_every_error_has_the_exit_code_it_had() -> None:
    codes = {cls.__name__: exit_code(cls) for cls in _package_errors()}
    assert codes == EXPECTED_EXIT_CODES
    assert exit_code(MloopError) == 1
    assert NO_TRAFFIC_EXIT_CODE == exit_code(errors.MonitorError)  # what the exported pipelines skip on


def test_exit_codes_are_data_of_the_cli_not_of_the_classes() -> None:
    assert not [cls.__name__ for cls in _package_errors() if "exit_code" in vars(cls)]
    assert all(cls.__module__ == "mloop.errors" for cls, _ in EXIT_CODES)
    assert EXIT_CODES[-1] == (MloopError, 1)


def test_no_entry_of_the_exit_code_table_is_shadowed_by_an_earlier_one() -> None:
    for index, (cls, _) in enumerate(EXIT_CODES):
        earlier = [other.__name__ for other, _ in EXIT_CODES[:index] if issubclass(cls, other)]
        assert not earlier, f"{cls.__name__} comes after its base {earlier}: most specific class first"
    assert len({cls for cls, _ in EXIT_CODES}) == len(EXIT_CODES)


def test_every_http_problem_has_its_status_in_serve() -> None:
    from mloop.serve.http import STATUS, status_of

    problems = {
        cls for cls in _package_errors() if issubclass(cls, errors.HTTPProblem) and cls is not errors.HTTPProblem
    }
    statuses = {cls.__name__: status_of(cls("x")) for cls in problems}
    assert statuses == EXPECTED_STATUS
    assert status_of(errors.HTTPProblem("x")) == 500
    assert {cls for cls, _ in STATUS} == problems
    assert not [cls.__name__ for cls in problems | {errors.HTTPProblem} if "status_code" in vars(cls)]


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (errors.LockBusy("held"), 10),
        (errors.DuplicateRequestId("again"), 8),
        (errors.ProfileError("no profile"), 9),
        (errors.ExportError("bad option"), 2),
        (MloopError("plain"), 1),
    ],
)
def test_main_exits_with_the_code_of_the_table(
    error: MloopError, code: int, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def fail(**_: object) -> None:
        raise error

    monkeypatch.setattr(cli_main, "app", fail)
    with pytest.raises(SystemExit) as exited:
        cli_main.main()
    assert exited.value.code == code
    assert f"error: {error.message}" in capsys.readouterr().err
