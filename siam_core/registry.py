"""A small name -> builder registry, one per kind of part (backbone, neck, head, tracker).

Configs name a part by its registered type and give its keyword arguments; nothing here is
global configuration, so differently configured models coexist in one process.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T", bound=Callable[..., Any])


class Registry:
    """Maps type names to builders (classes or functions)."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._builders: dict[str, Callable[..., Any]] = {}

    def register(self, name: str | None = None) -> Callable[[T], T]:
        """Decorator: register a builder under ``name`` (default: its ``__name__``)."""

        def deco(builder: T) -> T:
            key = name or builder.__name__
            if key in self._builders:
                raise KeyError(f"{self.kind} '{key}' is registered twice")
            self._builders[key] = builder
            return builder

        return deco

    def build(self, spec: dict[str, Any]) -> Any:
        """Build from ``{"type": name, **kwargs}``; unknown names list what exists."""
        if not isinstance(spec, dict) or "type" not in spec:
            raise ValueError(f"{self.kind} spec must be a mapping with a 'type' key, got {spec!r}")
        kwargs = dict(spec)
        name = kwargs.pop("type")
        if name not in self._builders:
            raise ValueError(f"unknown {self.kind} '{name}'; known: {sorted(self._builders)}")
        try:
            return self._builders[name](**kwargs)
        except TypeError as exc:
            raise ValueError(f"bad arguments for {self.kind} '{name}': {exc}") from exc

    def names(self) -> list[str]:
        return sorted(self._builders)

    def __contains__(self, name: str) -> bool:
        return name in self._builders


BACKBONES = Registry("backbone")
NECKS = Registry("neck")
HEADS = Registry("head")
