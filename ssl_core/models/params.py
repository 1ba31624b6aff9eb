"""Hyperparameters as typed dataclass configs *and* scikit-learn `__init__` arguments.

`config_init(Config)` makes the `__init__` an estimator class gets from its Config (see
SSLEstimator.__init_subclass__); `build_config` rebuilds a (nested) config from the JSON a
saved model carries.
"""
from __future__ import annotations

import dataclasses
import inspect
from typing import Any


def build_config(config_cls: type, values: dict[str, Any]) -> Any:
    """Rebuild a (possibly nested) config dataclass from its asdict() form; JSON turned
    tuples into lists, so fields whose default is a tuple get tuples back."""
    kwargs = {}
    for f in dataclasses.fields(config_cls):
        if f.name not in values:
            continue
        v = values[f.name]
        default = f.default if f.default is not dataclasses.MISSING else None
        if f.default_factory is not dataclasses.MISSING:
            default = f.default_factory()
        if dataclasses.is_dataclass(default) and isinstance(v, dict):
            v = build_config(type(default), v)
        elif isinstance(default, tuple) and isinstance(v, list):
            v = tuple(v)
        kwargs[f.name] = v
    return config_cls(**kwargs)


def config_init(config_cls: type):
    """An `__init__` whose keyword arguments are the fields of `config_cls` (with its defaults)
    and `random_state`: what scikit-learn's get_params / set_params / clone introspect. It only
    stores them, as scikit-learn requires."""
    fields = dataclasses.fields(config_cls)
    defaults = config_cls()
    names = {f.name for f in fields}

    def __init__(self, *, random_state: int = 0, **params: Any) -> None:
        unknown = set(params) - names
        if unknown:
            raise TypeError(f"{type(self).__name__} got unknown parameters {sorted(unknown)}; "
                            f"it takes {', '.join(sorted(names))} and random_state")
        for f in fields:
            setattr(self, f.name, params.get(f.name, getattr(defaults, f.name)))
        self.random_state = random_state

    kw = inspect.Parameter.KEYWORD_ONLY
    __init__.__signature__ = inspect.Signature(
        [inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD)]
        + [inspect.Parameter(f.name, kw, default=getattr(defaults, f.name)) for f in fields]
        + [inspect.Parameter("random_state", kw, default=0)])
    __init__.__doc__ = f"Hyperparameters: the fields of {config_cls.__name__}, and random_state."
    return __init__
