"""A builder registry, one per framework package: architecture name -> builder function."""

from __future__ import annotations

from typing import Callable, Iterator, TypeVar

from parity.catalog import ModelSpec

Builder = TypeVar("Builder", bound=Callable)


class BuilderRegistry:
    """Builders registered by function name; the name is the spec's `architecture`."""

    def __init__(self, framework: str) -> None:
        self.framework = framework
        self._builders: dict[str, Callable] = {}

    def register(self, builder: Builder) -> Builder:
        """Decorator: register `builder` under its function name."""
        if builder.__name__ in self._builders:
            raise ValueError(f"{self.framework}: builder {builder.__name__!r} registered twice")
        self._builders[builder.__name__] = builder
        return builder

    def __contains__(self, architecture: object) -> bool:
        return architecture in self._builders

    def __iter__(self) -> Iterator[str]:
        return iter(self._builders)

    def builder_for(self, spec: ModelSpec) -> Callable:
        """The builder of `spec.architecture`; raises NotImplementedError naming what is missing."""
        if spec.architecture not in self._builders:
            raise NotImplementedError(
                f"{spec.id}: {self.framework} has no builder for architecture {spec.architecture!r} yet"
            )
        return self._builders[spec.architecture]
