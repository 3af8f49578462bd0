"""One registry type for every pluggable name: PEFT methods, judges, benchmarks, schedulers.

A spec may only name registered things; nothing in a spec imports code. A miss lists the valid names,
so `unknown judge 'oracle' (known: hf_classifier, llama_guard, refusal)` is the whole error.
"""

from __future__ import annotations

from typing import Callable, Generic, Iterator, TypeVar

from alignsweep.errors import InputError

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
            raise InputError(f"unknown {self.kind} {name!r} (known: {', '.join(self.names())})") from None

    def names(self) -> list[str]:
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())
