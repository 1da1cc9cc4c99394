"""Named records for every choice a user makes (attention, encoder, device, output, scenario, ...).

One :class:`Registry` per axis; adding an implementation is one :meth:`Registry.register` call. The Hydra
groups, the valid-names part of error messages and the tests are all derived from the registries, so a new
record needs no other edit.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Generic, Iterator, Optional, TypeVar

import torch

from vda.errors import ConfigError

T = TypeVar("T")

Availability = Callable[[torch.device], Optional[str]]


@dataclass(frozen=True)
class Record(Generic[T]):
    """One choice: its name, what it is, and why it cannot run on a device (``None`` when it can)."""

    name: str
    value: T
    available: Optional[Availability] = None
    help: str = ""

    def unavailable_reason(self, device: torch.device) -> Optional[str]:
        return self.available(torch.device(device)) if self.available is not None else None


class Registry(Generic[T]):
    """Ordered name -> :class:`Record` map; ``key`` is the config key named in error messages."""

    def __init__(self, key: str) -> None:
        self.key = key
        self._records: dict[str, Record[T]] = {}

    def register(
        self, name: str, value: T, available: Optional[Availability] = None, help: str = "", replace: bool = False
    ) -> T:
        if not name or not name.replace("_", "").replace("-", "").isalnum():
            raise ConfigError(f"cannot register {self.key} {name!r}: use letters, digits, '-' and '_' only")
        if name in self._records and not replace:
            raise ConfigError(f"{self.key} {name!r} is already registered; pass replace=True to override it")
        self._records[name] = Record(name, value, available, help)
        return value

    def unregister(self, name: str) -> None:
        self._records.pop(name, None)

    def record(self, name: str) -> Record[T]:
        try:
            return self._records[str(name)]
        except KeyError:
            raise ConfigError(f"unknown {self.key} {name!r}; choose one of {self.choices()}") from None

    def get(self, name: str) -> T:
        return self.record(name).value

    def names(self) -> list[str]:
        return list(self._records)

    def choices(self) -> str:
        return ", ".join(self._records)

    def __contains__(self, name: object) -> bool:
        return name in self._records

    def records(self) -> list[Record[T]]:
        return list(self._records.values())

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._records))

    def __len__(self) -> int:
        return len(self._records)


__all__ = ["Availability", "Record", "Registry"]
