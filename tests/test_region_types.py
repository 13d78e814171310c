"""Region types: registration, YAML includes by type name with parameters, error reporting, the CLI listing."""
import json
import subprocess
import sys

import pytest

from braincore.assembly_config import assembly_from_text
from braincore.config import ConfigProblems
from braincore.graph import Assembly
from braincore.errors import ConfigError
from braincore.region_types import REGION_TYPES, build_region, register_region


def pool(size: int = 10, tau_m: str = "20 ms", drive_hz: float = 0.0) -> Assembly:
    """A test region: one LIF population ``cells`` behind the ports ``in`` and ``out``."""
    if size < 1:
        raise ConfigError(f"size must be >= 1, got {size}", [("size", f"must be >= 1, got {size}")])
    a = Assembly(name="pool")
    a.add_population("cells", "lif", size, {"tau_m": tau_m})
    a.add_port("in", "cells")
    a.add_port("out", "cells")
    if drive_hz:
        a.add_input("drive", "poisson", "cells", rate=f"{drive_hz} Hz", weight="1 mV", sources=10)
    a.add_modulator("dopamine", tau="100 ms")
    return a


@pytest.fixture(autouse=True)
def registered():
    register_region("test_pool", pool)
    yield
    REGION_TYPES.pop("test_pool", None)


YAML = """
kind: assembly
name: two
include:
  a: {region: test_pool, params: {size: 12, drive_hz: 5}}
  b: {region: test_pool, params: {size: 8}}
projections:
  - {pre: a.out, post: b.in, connector: {type: fixed_indegree, k: 3}, weight: 0.5 mV}
"""


def test_yaml_includes_region_types_with_parameters_and_ports():
    a = assembly_from_text(YAML, "two.yaml")
    assert {p.name: p.size for p in a.populations()} == {"a.cells": 12, "b.cells": 8}
    assert a.resolve("a.out") == "a.cells" and a.resolve("b.in") == "b.cells"
    assert [i.name for i in a.inputs] == ["a.drive"]
    assert a.modulators == {"dopamine": {"tau": "100 ms", "baseline": 0.0, "value": None}}
    assert a.graph.has_edge("a.cells", "b.cells")


def test_region_errors_point_at_the_include():
    bad = YAML.replace("{size: 12, drive_hz: 5}", "{size: 12, drive_hzz: 5}").replace("{size: 8}", "{size: 0}")
    bad = bad.replace("region: test_pool, params: {size: 12", "region: test_pol, params: {size: 12")
    with pytest.raises(ConfigProblems) as err:
        assembly_from_text(bad, "two.yaml")
    text = str(err.value)
    assert "two.yaml:5: include.a.region: unknown region type 'test_pol' (did you mean 'test_pool'?)" in text
    assert "two.yaml:6: include.b.params.size: must be >= 1, got 0" in text
    with pytest.raises(ConfigError, match="unknown parameter of region 'test_pool'; did you mean 'drive_hz'"):
        build_region("test_pool", {"drive_hzz": 5})
    both = YAML.replace("{region: test_pool, params: {size: 8}}", "{region: test_pool, file: x.yaml}")
    with pytest.raises(ConfigProblems, match="give either 'file'"):
        assembly_from_text(both, "two.yaml")


def test_cli_lists_region_types():
    done = subprocess.run([sys.executable, "-m", "braincore", "regions", "--json"], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    listed = json.loads(done.stdout.strip().splitlines()[-1])["regions"]
    assert isinstance(listed, dict)  # the registered regions of the installed packages (test_pool is not)
