"""Compare the local models' environment with the serving image's package list.

The environment must hold the serving image's packages at their pinned versions plus what those
need, and nothing else: a package more would let a model load here that fails on the endpoint.
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path

from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from mme_factory.errors import MmeFactoryError
from mme_factory.serving_image import serving_packages

# Run by the environment's own Python: its distributions, their requirements and the values
# environment markers are evaluated against (as packaging.markers.default_environment has them).
_INVENTORY = r"""
import importlib.metadata as md, json, os, platform, sys
v = sys.implementation.version
markers = {
    "implementation_name": sys.implementation.name,
    "implementation_version": f"{v.major}.{v.minor}.{v.micro}",
    "os_name": os.name, "platform_machine": platform.machine(),
    "platform_release": platform.release(), "platform_system": platform.system(),
    "platform_version": platform.version(), "python_full_version": platform.python_version(),
    "platform_python_implementation": platform.python_implementation(),
    "python_version": ".".join(platform.python_version_tuple()[:2]), "sys_platform": sys.platform,
}
found = {d.metadata["Name"]: [d.version, d.requires or []] for d in md.distributions()}
print(json.dumps({"markers": markers, "distributions": found}))
"""


@dataclass(frozen=True)
class EnvironmentDifference:
    extra: dict[str, str]  # installed but neither listed nor needed: name -> version
    missing: list[str]  # listed but not installed
    wrong_version: dict[str, tuple[str, str]]  # name -> (pinned, installed)

    @property
    def empty(self) -> bool:
        return not (self.extra or self.missing or self.wrong_version)

    def describe(self) -> str:
        parts = []
        if self.missing:
            parts.append(f"missing {', '.join(self.missing)}")
        if self.wrong_version:
            pins = (f"{n} {have} (pinned {want})" for n, (want, have) in self.wrong_version.items())
            parts.append("other versions: " + ", ".join(pins))
        if self.extra:
            parts.append("not in the serving image: " + ", ".join(sorted(self.extra)))
        return "; ".join(parts) or "none"


def inventory(python: Path) -> tuple[dict[str, str], dict[str, tuple[str, list[str]]]]:
    """The environment's marker values and its distributions (name -> version, requirements)."""
    try:
        done = subprocess.run(
            [str(python), "-I", "-c", _INVENTORY], capture_output=True, text=True, timeout=60
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        raise MmeFactoryError(f"cannot list the packages of {python}: {error}") from None
    if done.returncode != 0:
        raise MmeFactoryError(f"cannot list the packages of {python}: {done.stderr.strip()}")
    loaded = json.loads(done.stdout)
    distributions = {
        canonicalize_name(name): (str(version), list(requires))
        for name, (version, requires) in loaded["distributions"].items()
    }
    return loaded["markers"], distributions


def compare_with_serving_image(python: Path) -> EnvironmentDifference:
    markers, installed = inventory(python)
    listed = serving_packages()
    needed: set[str] = set()
    pending = [package.name for package in listed]
    while pending:
        name = pending.pop()
        if name in needed or name not in installed:
            continue
        needed.add(name)
        for line in installed[name][1]:
            requirement = Requirement(line)
            if requirement.marker is None or _applies(requirement.marker, markers):
                pending.append(canonicalize_name(requirement.name))
    wrong = {}
    for package in listed:
        pinned = package.pinned_version
        have = installed.get(package.name, (None, []))[0]
        if pinned and have and Version(have).public != Version(pinned).public:
            wrong[package.name] = (pinned, have)
    return EnvironmentDifference(
        extra={name: installed[name][0] for name in sorted(set(installed) - needed)},
        missing=sorted(package.name for package in listed if package.name not in installed),
        wrong_version=wrong,
    )


def _applies(marker: Marker, markers: dict[str, str]) -> bool:
    return marker.evaluate({**markers, "extra": ""})
