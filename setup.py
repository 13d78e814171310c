"""Package list for setuptools: discovered packages plus configs/ installed as ``braincore.configs``.

All metadata lives in pyproject.toml; this file only maps the top-level ``configs/`` folder (YAML, data not
code) into the installed package so that ``braincore run`` finds the bundled configs after a plain install.
"""
from setuptools import find_packages, setup

packages = find_packages(include=["braincore*", "regions*", "tasks*"])
packages.append("braincore.configs")

setup(
    packages=packages,
    package_dir={"braincore.configs": "configs"},
    package_data={"braincore.configs": ["*.yaml", "**/*.yaml"], "braincore.native": ["kernel.c"]},
    include_package_data=True,
)
