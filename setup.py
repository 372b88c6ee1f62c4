"""The wheel's packages, which pyproject.toml cannot list by itself: every ``benchmark``
subpackage found on disk, plus the repository's top-level declarative folders mapped inside the
package (``configs/`` -> ``benchmark/configs``, ``search_spaces/``, ``datasets/``), where
``benchmark.paths`` finds them with ``importlib.resources``. A fixed package list would miss the
next subpackage; ``packages.find`` finds no folder outside ``benchmark/``."""

from setuptools import find_namespace_packages, setup

#: package inside the wheel -> folder in the repository (the repository keeps them at its top,
#: beside the code; docs/architecture.md)
DECLARATIVE = {f"benchmark.{name}": name for name in ("configs", "search_spaces", "datasets")}

setup(
    packages=find_namespace_packages(include=["benchmark", "benchmark.*"]) + list(DECLARATIVE),
    package_dir=DECLARATIVE,
    package_data={"benchmark": ["templates/*.j2"]} | {pkg: ["*.yaml"] for pkg in DECLARATIVE},
)
