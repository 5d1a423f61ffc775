"""mloop: the machine-learning lifecycle as one closed loop.

data → training → experiment tracking → model registry → deployment → monitoring → retraining

The stage functions take a :class:`Project` (one ``mloop.yaml``); ``compute_drift`` compares two
DataFrames for library users. Names are imported on first use so ``import mloop`` stays light.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS = {
    "Project": "mloop.project",
    "MloopConfig": "mloop.config",
    "load_config": "mloop.config",
    "MloopError": "mloop.errors",
    "ingest": "mloop.pipeline.stages",
    "validate": "mloop.pipeline.stages",
    "train": "mloop.pipeline.stages:train_stage",
    "run": "mloop.pipeline.stages",
    "register": "mloop.registry.versions",
    "promote": "mloop.registry.gate",
    "rollback": "mloop.registry.gate",
    "monitor": "mloop.monitor.runner",
    "retrain": "mloop.retrain.controller",
    "compute_drift": "mloop.monitor.drift",
    "init_project": "mloop.pipeline.scaffold",
}

__all__ = sorted([*_EXPORTS, "__version__"])

if TYPE_CHECKING:
    from mloop.config import MloopConfig as MloopConfig
    from mloop.config import load_config as load_config
    from mloop.errors import MloopError as MloopError
    from mloop.monitor.drift import compute_drift as compute_drift
    from mloop.monitor.runner import monitor as monitor
    from mloop.pipeline.scaffold import init_project as init_project
    from mloop.pipeline.stages import ingest as ingest
    from mloop.pipeline.stages import run as run
    from mloop.pipeline.stages import train_stage as train  # noqa: F401 - re-exported lazily
    from mloop.pipeline.stages import validate as validate
    from mloop.project import Project as Project
    from mloop.registry.gate import promote as promote
    from mloop.registry.gate import rollback as rollback
    from mloop.registry.versions import register as register
    from mloop.retrain.controller import retrain as retrain


def __getattr__(name: str) -> Any:
    target = _EXPORTS.get(name)
    if target is None:
        raise AttributeError(f"module 'mloop' has no attribute {name!r}")
    module, _, attr = target.partition(":")
    return getattr(import_module(module), attr or name)
