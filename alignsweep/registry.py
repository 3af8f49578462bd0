"""One registry type for every pluggable name: PEFT methods, judges, benchmarks, schedulers.

A spec may only name registered things; nothing in a spec imports code. A miss suggests the closest names and lists the valid ones,
so `unknown judge 'refsual' (did you mean 'refusal'? known: hf_classifier, llama_guard, refusal)` is the
whole error.
"""

from __future__ import annotations

from typing import Callable, Generic, Iterator, TypeVar

from alignsweep.errors import InputError
from alignsweep.suggest import unknown_name

T = TypeVar("T")


class Registry(Generic[T]):
    """Name → object map with decorator registration and a helpful miss."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        def decorator(obj: T) -> T:
            if name in self._items:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self._items[name] = obj
            return obj

        return decorator

    def get(self, name: str) -> T:
        try:
            return self._items[name]
        except KeyError:
            raise InputError(self.unknown(name)) from None

    def unknown(self, name: str) -> str:
        """The message for a name that is not registered: closest names first, then all of them."""
        return unknown_name(self.kind, name, self.names())

    def names(self) -> list[str]:
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())
