"""One strict way to build frozen config dataclasses from plain mappings (TOML, JSON).

An unknown key or a value of the wrong type is a one-line `MoDAError` naming the key and where it came from.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from typing import Any, TypeVar

from .errors import MoDAError

T = TypeVar("T")


def _convert(value: Any, annotation: Any, key: str, where: str) -> Any:
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        for option in args:
            if option is type(None) and value is None:
                return None
        for option in args:
            if option is not type(None):
                try:
                    return _convert(value, option, key, where)
                except MoDAError:
                    continue
        raise MoDAError(f"{where}: {key} = {value!r} has the wrong type; expected {annotation}")
    if origin is typing.Literal:
        if value not in args:
            raise MoDAError(f"{where}: {key} = {value!r} is not one of {', '.join(repr(a) for a in args)}")
        return value
    if isinstance(annotation, type) and dataclasses.is_dataclass(annotation):
        if not isinstance(value, Mapping):
            raise MoDAError(f"{where}: [{key}] must be a table of {annotation.__name__} fields, not {value!r}")
        return from_mapping(annotation, value, where, prefix=f"{key}.")
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis and isinstance(value, (list, tuple)):
            args = (args[0],) * len(value)
        if not isinstance(value, (list, tuple)) or len(value) != len(args):
            raise MoDAError(f"{where}: {key} = {value!r} must be a list of {len(args)} values")
        return tuple(_convert(v, a, f"{key}[{i}]", where) for i, (v, a) in enumerate(zip(value, args)))
    if annotation is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if annotation in (int, float, str, bool):
        if type(value) is not annotation:
            raise MoDAError(f"{where}: {key} = {value!r} must be of type {annotation.__name__}")
        return value
    raise TypeError(f"unsupported config field type {annotation!r} for {key}")


def from_mapping(cls: type[T], values: Mapping[str, Any], where: str, prefix: str = "") -> T:
    """An instance of the dataclass `cls` from `values`, strictly: every key known, every value of its type.

    `where` names the source (a file path) in errors; missing keys take the field defaults, and a missing
    required field is an error too.
    """
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise MoDAError(f"{where}: unknown key {prefix}{unknown[0]}; known keys: {', '.join(sorted(fields))}")
    required = [name for name, f in fields.items() if f.default is dataclasses.MISSING
                and f.default_factory is dataclasses.MISSING and name not in values]
    if required:
        raise MoDAError(f"{where}: missing key {prefix}{required[0]}")
    kwargs = {name: _convert(value, hints[name], prefix + name, where) for name, value in values.items()}
    try:
        return cls(**kwargs)
    except ValueError as exc:
        raise MoDAError(f"{where}: {exc}") from exc
