"""YAML configs: safe loading with line numbers, a small schema language, and errors that name file, line and key.

Every config is a YAML mapping with a ``kind`` key that selects its schema and runner from :data:`KINDS`. The
modules that define kinds register them (:func:`register_kind`) when imported; this registry imports none of
them itself but loads a kind on its first look-up (:func:`get_kind`): the engine's own kinds by module path
(:data:`BUILTIN_KINDS`), the tasks' kinds through the ``braincore.kinds`` entry points. Loading a config never
executes anything: text is parsed with ``yaml.safe_load`` and, for line numbers, composed with the safe loader's
node tree.

Validation reports *every* problem at once, each as ``file:line: key.path: what is wrong (expected ...)``,
before anything runs::

    configs/gallery.yaml:12: panels[1].params.tau_m: '20 mV' is a voltage, expected a time (canonical unit ms)
    configs/gallery.yaml:7: panels[0].modle: unknown key; did you mean 'model'?
"""
from __future__ import annotations

import difflib
import importlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Optional, Sequence, Union

import yaml

from .errors import ConfigError
from .units import CANONICAL, UnitError, parse_quantity

KeyPath = tuple  # tuple of str | int


def format_keypath(path: KeyPath) -> str:
    """``("panels", 1, "params")`` -> ``"panels[1].params"``."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


@dataclass
class Problem:
    """One problem found in a config."""

    file: str
    line: Optional[int]
    keypath: KeyPath
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {format_keypath(self.keypath)}: {self.message}"


class ConfigProblems(ConfigError):
    """All the problems of one config; ``str()`` lists them one per line."""

    def __init__(self, problems: Sequence[Problem]):
        self.problems = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


@dataclass
class Document:
    """A loaded YAML file: its data, where it came from, and the line of every key path."""

    data: Any
    file: str
    lines: dict = field(default_factory=dict)

    def line(self, path: KeyPath) -> Optional[int]:
        """The 1-based line of ``path``, or of its nearest ancestor that has one."""
        path = tuple(path)
        while path:
            if path in self.lines:
                return self.lines[path]
            path = path[:-1]
        return self.lines.get((), 1)

    def problem(self, path: KeyPath, message: str) -> Problem:
        return Problem(self.file, self.line(path), tuple(path), message)


def _collect_lines(node: yaml.Node, path: KeyPath, lines: dict) -> None:
    lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = key_node.value
            lines[path + (key,)] = key_node.start_mark.line + 1
            _collect_lines(value_node, path + (key,), lines)
            lines[path + (key,)] = key_node.start_mark.line + 1
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _collect_lines(item, path + (index,), lines)


def load_text(text: str, file: str = "<string>") -> Document:
    """Parse YAML text safely; syntax errors become a :class:`ConfigProblems` with the line."""
    try:
        data = yaml.safe_load(text)
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        reason = getattr(err, "problem", None) or str(err)
        raise ConfigProblems([Problem(file, line, (), f"YAML syntax error: {reason}")]) from None
    lines: dict = {}
    if node is not None:
        _collect_lines(node, (), lines)
    return Document(data, file, lines)


def load_file(path: Union[str, Path]) -> Document:
    """Read and parse a YAML file; a missing file is a one-line :class:`ConfigError`."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: no such config file")
    return load_text(path.read_text(encoding="utf-8"), str(path))


# ------------------------------------------------------------------------------------------ schema
class Spec:
    """A schema node: ``check(value, doc, path, problems)`` appends problems and returns the cleaned value."""

    description = "a value"
    default: Any = None
    required = False

    def check(self, value: Any, doc: Document, path: KeyPath, problems: list) -> Any:
        return value


class Quantity(Spec):
    """A number with a unit of ``dimension`` (bare numbers are canonical); optional bounds in canonical units."""

    def __init__(self, dimension: str, default: Any = None, *, required: bool = False, minimum: Optional[float] = None,
                 exclusive_minimum: Optional[float] = None, doc: str = ""):
        self.dimension, self.default, self.required, self.doc = dimension, default, required, doc
        self.minimum, self.exclusive_minimum = minimum, exclusive_minimum
        self.description = f"a {dimension} such as '1 {CANONICAL[dimension]}'" if dimension != "dimensionless" \
            else "a number"

    def check(self, value, doc, path, problems):
        try:
            number = parse_quantity(value, self.dimension)
        except UnitError as err:
            problems.append(doc.problem(path, str(err)))
            return None
        unit = CANONICAL[self.dimension]
        unit = "" if unit == "1" else f" {unit}"
        if self.exclusive_minimum is not None and not number > self.exclusive_minimum:
            problems.append(doc.problem(path, f"must be > {self.exclusive_minimum:g}{unit}, got {number:g}{unit}"))
        if self.minimum is not None and not number >= self.minimum:
            problems.append(doc.problem(path, f"must be >= {self.minimum:g}{unit}, got {number:g}{unit}"))
        return number


class Integer(Spec):
    def __init__(self, default: Any = None, *, required: bool = False, minimum: Optional[int] = None, doc: str = ""):
        self.default, self.required, self.minimum, self.doc = default, required, minimum, doc
        self.description = "an integer" if minimum is None else f"an integer >= {minimum}"

    def check(self, value, doc, path, problems):
        if isinstance(value, bool) or not isinstance(value, int):
            problems.append(doc.problem(path, f"expected {self.description}, got {value!r}"))
            return None
        if self.minimum is not None and value < self.minimum:
            problems.append(doc.problem(path, f"expected {self.description}, got {value}"))
        return value


class Text(Spec):
    def __init__(self, default: Any = None, *, required: bool = False, choices: Optional[Iterable[str]] = None,
                 doc: str = ""):
        self.default, self.required, self.doc = default, required, doc
        self.choices = list(choices) if choices is not None else None
        self.description = "one of " + ", ".join(map(repr, self.choices)) if self.choices else "a string"

    def check(self, value, doc, path, problems):
        if not isinstance(value, str):
            problems.append(doc.problem(path, f"expected {self.description}, got {value!r}"))
            return None
        if self.choices is not None and value not in self.choices:
            near = difflib.get_close_matches(value, self.choices, n=1)
            hint = f"; did you mean {near[0]!r}?" if near else ""
            problems.append(doc.problem(path, f"unknown value {value!r}{hint} (expected {self.description})"))
        return value


class Flag(Spec):
    def __init__(self, default: bool = False, doc: str = ""):
        self.default, self.doc, self.description = default, doc, "true or false"

    def check(self, value, doc, path, problems):
        if not isinstance(value, bool):
            problems.append(doc.problem(path, f"expected true or false, got {value!r}"))
        return value


class Raw(Spec):
    """A number or a string kept as written, for values whose unit depends on another key (checked later)."""

    def __init__(self, default: Any = None, *, required: bool = False, doc: str = ""):
        self.default, self.required, self.doc = default, required, doc
        self.description = "a number or a quantity such as '0.5 nA'"

    def check(self, value, doc, path, problems):
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            problems.append(doc.problem(path, f"expected {self.description}, got {value!r}"))
        return value


class AnyMapping(Spec):
    """A mapping checked by a function ``checker(value, doc, path, problems) -> cleaned`` (free-form keys)."""

    def __init__(self, checker: Optional[Callable] = None, default: Any = None, doc: str = ""):
        self.checker, self.default, self.doc, self.description = checker, default, doc, "a mapping"

    def check(self, value, doc, path, problems):
        if not isinstance(value, Mapping):
            problems.append(doc.problem(path, f"expected a mapping, got {value!r}"))
            return None
        return self.checker(value, doc, path, problems) if self.checker else dict(value)


class Record(Spec):
    """A mapping with known keys: unknown keys are errors (with a suggestion), required keys must be present."""

    def __init__(self, fields: Mapping[str, Spec], *, required: bool = False, default: Any = None, doc: str = ""):
        self.fields, self.required, self.default, self.doc = dict(fields), required, default, doc
        self.description = "a mapping with keys " + ", ".join(self.fields)

    def check(self, value, doc, path, problems):
        if not isinstance(value, Mapping):
            problems.append(doc.problem(path, f"expected {self.description}, got {value!r}"))
            return None
        out: dict[str, Any] = {}
        for key in value:
            if key not in self.fields:
                near = difflib.get_close_matches(str(key), self.fields, n=1)
                hint = f"; did you mean {near[0]!r}?" if near else ""
                problems.append(doc.problem(path + (key,), f"unknown key{hint} (expected one of: "
                                                           f"{', '.join(self.fields)})"))
        for name, spec in self.fields.items():
            if name in value and value[name] is not None:
                out[name] = spec.check(value[name], doc, path + (name,), problems)
            elif spec.required:
                problems.append(doc.problem(path, f"missing required key {name!r} ({spec.description})"))
            else:
                out[name] = spec.default
        return out


class ListOf(Spec):
    def __init__(self, item: Spec, *, required: bool = False, min_items: int = 0, default: Any = None,
                 doc: str = ""):
        self.item, self.required, self.min_items, self.default, self.doc = item, required, min_items, default, doc
        self.description = f"a list of {item.description}"

    def check(self, value, doc, path, problems):
        if not isinstance(value, list):
            problems.append(doc.problem(path, f"expected {self.description}, got {value!r}"))
            return None
        if len(value) < self.min_items:
            problems.append(doc.problem(path, f"expected at least {self.min_items} item(s), got {len(value)}"))
        return [self.item.check(v, doc, path + (i,), problems) for i, v in enumerate(value)]


# ------------------------------------------------------------------------------------------ config kinds
@dataclass
class Kind:
    """A config kind: its schema, an optional cross-field check, and the function that runs it.

    ``semantic_check(config, doc, problems)`` runs after the schema (e.g. model names and their parameters),
    also when the schema found problems: it must skip values that are ``None`` (those that failed);
    ``runner(config, options) -> dict`` returns a JSON-serialisable summary.
    """

    name: str
    schema: Record
    runner: Callable[[dict, dict], dict]
    semantic_check: Optional[Callable[[dict, Document, list], None]] = None
    description: str = ""


KINDS: dict[str, Kind] = {}

#: the engine's own config kinds: name -> the module that registers it when imported. The registry names modules
#: and imports them only when a kind is looked up (:func:`get_kind`), so it depends on none of its registrants;
#: the kinds of other packages (tasks) come from the ``braincore.kinds`` entry points the same way.
BUILTIN_KINDS: dict[str, str] = {
    "neuron_gallery": "braincore.gallery",
    "assembly": "braincore.assembly_config",
    "distributed": "braincore.distributed.config",
}


def register_kind(kind: Kind) -> Kind:
    """Add a config kind (called by the module that defines it, when that module is imported)."""
    KINDS[kind.name] = kind
    return kind


def get_kind(name: str) -> Optional[Kind]:
    """The kind registered as ``name``, or ``None``. A kind not registered yet is loaded first: a built-in one
    by importing its module (:data:`BUILTIN_KINDS`), another by loading the ``braincore.kinds`` entry point of
    that name (or, failing that, all of them)."""
    if name in KINDS:
        return KINDS[name]
    module = BUILTIN_KINDS.get(name)
    if module is not None:
        importlib.import_module(module)
    else:
        _load_plugin_kinds(name)
        if name not in KINDS:
            _load_plugin_kinds()
    return KINDS.get(name)


def load_all_kinds() -> dict[str, Kind]:
    """Every kind there is (built-in and from entry points), loaded: :data:`KINDS`."""
    for module in BUILTIN_KINDS.values():
        importlib.import_module(module)
    _load_plugin_kinds()
    return KINDS


def validate(doc: Document) -> tuple[Kind, dict]:
    """Check a loaded document against its kind's schema; raise :class:`ConfigProblems` listing everything."""
    data = doc.data
    if not isinstance(data, Mapping):
        raise ConfigProblems([doc.problem((), "a config must be a YAML mapping with a 'kind' key")])
    kind_name = data.get("kind")
    kind = get_kind(kind_name)
    if kind is None:
        load_all_kinds()
        near = difflib.get_close_matches(str(kind_name), KINDS, n=1)
        hint = f"; did you mean {near[0]!r}?" if near else ""
        what = "missing 'kind'" if kind_name is None else f"unknown kind {kind_name!r}{hint}"
        raise ConfigProblems([doc.problem(("kind",), f"{what} (expected one of: {', '.join(sorted(KINDS))})")])
    problems: list[Problem] = []
    config = kind.schema.check(data, doc, (), problems)
    if config is not None and kind.semantic_check is not None:
        # runs even after schema problems, so that every problem is reported at once; values that failed
        # their schema check are None and the semantic check skips them
        kind.semantic_check(config, doc, problems)
    if problems:
        raise ConfigProblems(problems)
    return kind, config


def load_config(path: Union[str, Path]) -> tuple[Kind, dict]:
    """Load and validate a config file: ``kind, config = load_config("configs/gallery.yaml")``."""
    return validate(load_file(path))


_PLUGIN_GROUP = "braincore.kinds"


def _load_plugin_kinds(name: Optional[str] = None) -> None:
    """Import the modules named by the ``braincore.kinds`` entry points (only the one called ``name`` when
    given; tasks register their config kinds there: ``diehl_cook = "tasks.perception.diehl_cook"`` in
    pyproject.toml), so the engine runs task configs without importing the task packages itself. A plugin that
    fails to import is reported, not fatal."""
    from importlib.metadata import entry_points

    for entry in entry_points(group=_PLUGIN_GROUP):
        if entry.name in KINDS or (name is not None and entry.name != name):
            continue
        try:
            entry.load()
        except Exception as err:  # a broken plugin must not hide the other kinds
            import warnings

            warnings.warn(f"braincore: config kind {entry.name!r} ({entry.value}) failed to load: {err}")


def bundled_config_dir() -> Path:
    """The folder of bundled configs: ``configs/`` of a source checkout, else the installed package data."""
    checkout = Path(__file__).resolve().parent.parent / "configs"
    if checkout.is_dir():
        return checkout
    from importlib import resources

    return Path(str(resources.files("braincore.configs")))


def resolve_config_path(name: Union[str, Path]) -> Path:
    """A config path as given, or a bundled config by relative name (``gallery.yaml`` or ``gallery``)."""
    path = Path(name)
    if path.is_file():
        return path
    bundled = bundled_config_dir()
    for candidate in (bundled / path, bundled / path.with_suffix(".yaml")):
        if candidate.is_file():
            return candidate
    raise ConfigError(f"{name}: no such config file (nor a bundled config of that name in {bundled})")
