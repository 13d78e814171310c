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

Reading a file never ends in a traceback: a file that is missing, a folder, binary (an image, a checkpoint),
not UTF-8, larger than :data:`MAX_CONFIG_BYTES`, nested deeper than :data:`MAX_DEPTH`, or whose aliases expand it
by more than :data:`MAX_ALIAS_EXPANSION` values (a "billion laughs" alias bomb) is refused with a
:class:`~braincore.errors.ConfigError` naming the file (and the line, where one is known); a key written twice in
one mapping is a problem of every kind (YAML itself would silently keep the last one).
"""
from __future__ import annotations

import codecs
import difflib
import importlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Optional, Sequence, Union

import yaml

from .data.files import check_regular_file, human_size, sniff
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


class FileProblem(Problem):
    """A problem of the file as a whole at a line (its encoding, its nesting, its aliases): no key path."""

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.message}"


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
    #: keys written twice in one mapping (reported by :func:`validate` with the other problems)
    duplicates: list = field(default_factory=list)

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
            if not isinstance(key_node, yaml.ScalarNode):  # a list or mapping as a key: refused when built
                continue
            key = key_node.value
            lines[path + (key,)] = key_node.start_mark.line + 1
            _collect_lines(value_node, path + (key,), lines)
            lines[path + (key,)] = key_node.start_mark.line + 1
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _collect_lines(item, path + (index,), lines)


#: the largest config file read, in bytes (a config holds settings; bulk data belongs in the .npy/.npz files
#: it names)
MAX_CONFIG_BYTES = 10 * 1024 * 1024
#: the deepest nesting of mappings and lists read (configs need a handful of levels)
MAX_DEPTH = 100
#: how many values YAML aliases (``*name``) may add to a document beyond those written in it
MAX_ALIAS_EXPANSION = 1_000_000


class _Refused(yaml.MarkedYAMLError):
    """A document refused by a limit (not a syntax error): its message is used as it is."""


class _Loader(yaml.SafeLoader):
    """``yaml.SafeLoader`` (so only plain data is ever built) that composes with limits: a nesting depth, no
    recursive aliases, and a count of the aliases and of the nodes written, for the expansion check."""

    def __init__(self, stream):
        super().__init__(stream)
        self.depth, self.written, self.aliases, self._open = 0, 0, [], set()
        self.building = None  # the node being constructed, to locate a value that cannot be built

    def construct_object(self, node, deep=False):
        self.building = node
        return super().construct_object(node, deep=deep)

    def compose_node(self, parent, index):
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent):
            if event.anchor in self._open:
                raise _Refused(None, None, f"recursive alias *{event.anchor} (used inside its own anchor "
                                           f"&{event.anchor}); a config cannot contain itself", event.start_mark)
            self.aliases.append(event)
            return super().compose_node(parent, index)
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise _Refused(None, None, f"nested more than {MAX_DEPTH} levels deep; refusing to read further "
                                       f"(a config needs a handful of levels)", event.start_mark)
        anchor = getattr(event, "anchor", None)
        if anchor is not None:
            self._open.add(anchor)
        try:
            node = super().compose_node(parent, index)
        finally:
            self.depth -= 1
            self._open.discard(anchor)
        self.written += 1
        return node


def _construct_timestamp(loader, node):
    try:
        return yaml.SafeLoader.construct_yaml_timestamp(loader, node)
    except (ValueError, OverflowError, AttributeError) as err:  # 2024-13-45, or !!timestamp on no date
        raise yaml.constructor.ConstructorError(None, None, f"{node.value!r} is not a valid date ({err}); quote "
                                                            f"it to keep it as text", node.start_mark) from None


_Loader.add_constructor("tag:yaml.org,2002:timestamp", _construct_timestamp)


def _children(node: yaml.Node) -> list:
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


def _expanded(root: yaml.Node) -> tuple[int, int]:
    """``(values, depth)`` of the node graph with every alias expanded: what a reader walking the loaded data
    sees. Counted without expanding (each shared node once), so an alias bomb costs no more than its text."""
    size: dict = {}
    depth: dict = {}
    stack = [(root, False)]
    while stack:
        node, ready = stack.pop()
        if id(node) in size:
            continue
        kids = _children(node)
        if not ready:
            stack.append((node, True))
            stack.extend((kid, False) for kid in kids if id(kid) not in size)
        else:
            size[id(node)] = 1 + sum(size[id(kid)] for kid in kids)
            depth[id(node)] = 1 + max((depth[id(kid)] for kid in kids), default=0)
    return size[id(root)], depth[id(root)]


def _duplicates(root: yaml.Node, file: str) -> list:
    """A :class:`Problem` for every key written twice in one mapping (each node walked once)."""
    out: list = []
    seen_nodes: set = set()
    stack: list[tuple[yaml.Node, KeyPath]] = [(root, ())]
    while stack:
        node, path = stack.pop()
        if id(node) in seen_nodes:
            continue
        seen_nodes.add(id(node))
        if isinstance(node, yaml.MappingNode):
            keys: dict = {}
            for key_node, value_node in node.value:
                if isinstance(key_node, yaml.ScalarNode):
                    key = (key_node.tag, key_node.value)
                    if key in keys:
                        out.append(Problem(file, key_node.start_mark.line + 1, path + (key_node.value,),
                                           f"duplicate key (also at line {keys[key]}; YAML would keep only the "
                                           f"last one)"))
                    else:
                        keys[key] = key_node.start_mark.line + 1
                    stack.append((value_node, path + (key_node.value,)))
        elif isinstance(node, yaml.SequenceNode):
            stack.extend((item, path + (i,)) for i, item in enumerate(node.value))
    return sorted(out, key=lambda p: p.line or 0)


def load_text(text: str, file: str = "<string>") -> Document:
    """Parse YAML text safely (``yaml.safe_load`` semantics: plain data only), with the line of every key.

    Syntax errors, and documents refused by a limit (:data:`MAX_CONFIG_BYTES`, :data:`MAX_DEPTH`,
    :data:`MAX_ALIAS_EXPANSION`, recursive aliases), become a :class:`ConfigProblems` naming ``file`` and the
    line; keys written twice are kept in ``Document.duplicates`` for :func:`validate` to report."""
    if len(text) > MAX_CONFIG_BYTES:
        raise ConfigError(f"{file}: {human_size(len(text))} is too large for a config (limit "
                          f"{human_size(MAX_CONFIG_BYTES)}); put bulk data in .npy/.npz files that the config names")
    try:
        loader = _Loader(text)  # the reader refuses control characters here
        try:
            node = loader.get_single_node()
            if node is not None and loader.aliases:
                values, depth = _expanded(node)
                line = loader.aliases[0].start_mark.line + 1
                if values - loader.written > MAX_ALIAS_EXPANSION:
                    raise ConfigProblems([FileProblem(
                        file, line, (), f"YAML aliases expand this document to {values:,} values from "
                                        f"{loader.written:,} written ({len(loader.aliases)} aliases); refusing "
                                        f"more than {MAX_ALIAS_EXPANSION:,} added values (an alias bomb?)")])
                if depth > MAX_DEPTH:
                    raise ConfigProblems([FileProblem(
                        file, line, (), f"YAML aliases nest this document {depth} levels deep; refusing more "
                                        f"than {MAX_DEPTH}")])
            # lines and duplicates from the tree as written: constructing merges '<<' keys into their mappings
            lines: dict = {}
            duplicates: list = []
            if node is not None:
                _collect_lines(node, (), lines)
                duplicates = _duplicates(node, file)
            try:
                data = loader.construct_document(node) if node is not None else None
            except (ValueError, TypeError, AttributeError, KeyError, IndexError, OverflowError) as err:
                # a value its tag cannot build (!!int zz, !!timestamp 99999-1-1): located at that value
                where = loader.building.start_mark.line + 1 if loader.building is not None else None
                tag = loader.building.tag.replace("tag:yaml.org,2002:", "!!") if loader.building is not None else ""
                raise ConfigProblems([FileProblem(file, where, (), f"YAML error: cannot build a {tag} value "
                                                                   f"({err})")]) from None
        finally:
            loader.dispose()
    except _Refused as err:
        mark = err.problem_mark
        raise ConfigProblems([FileProblem(file, mark.line + 1 if mark else None, (), err.problem)]) from None
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        if isinstance(err, yaml.reader.ReaderError):  # a control character: located by its position
            line = text.count("\n", 0, err.position) + 1
        reason = getattr(err, "problem", None) or str(err).splitlines()[0]
        context, context_mark = getattr(err, "context", None), getattr(err, "context_mark", None)
        if isinstance(err, yaml.composer.ComposerError) and context:  # duplicate anchor, a second document
            reason = f"{context}{f' at line {context_mark.line + 1}' if context_mark else ''}, {reason}"
        what = "YAML error" if isinstance(err, yaml.constructor.ConstructorError) else "YAML syntax error"
        raise ConfigProblems([Problem(file, line, (), f"{what}: {reason}")]) from None
    except RecursionError:  # a limit above should come first; never a traceback
        raise ConfigError(f"{file}: nested too deeply to read (more than {MAX_DEPTH} levels?)") from None
    return Document(data, file, lines, duplicates)


def _decode(raw: bytes, file: str) -> str:
    """The text of a config file: UTF-8 (a byte-order mark allowed) or UTF-16 with its byte-order mark."""
    if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        encoding = "utf-16"
    else:
        encoding = "utf-8-sig"
    try:
        return raw.decode(encoding)
    except UnicodeDecodeError as err:
        line = raw.count(b"\n", 0, err.start) + 1
        column = err.start - (raw.rfind(b"\n", 0, err.start) + 1) + 1
        if encoding == "utf-16":
            message = f"not valid UTF-16 text ({err.reason} at byte {err.start}); save the file as UTF-8"
        else:
            message = (f"not UTF-8 text: byte 0x{raw[err.start]:02x} at column {column} cannot be decoded "
                       f"(Latin-1 or Windows-1252?); save the file as UTF-8")
        raise ConfigProblems([FileProblem(file, line, (), message)]) from None


def read_config_text(path: Union[str, Path], what: str = "config file") -> str:
    """The text of a YAML file, or a :class:`ConfigError` naming it: missing, a folder, unreadable, larger than
    :data:`MAX_CONFIG_BYTES`, binary (an image, an archive, a checkpoint...) or not UTF-8/UTF-16 text."""
    path = Path(path)
    size = check_regular_file(path, what)
    if size > MAX_CONFIG_BYTES:
        raise ConfigError(f"{path}: {human_size(size)} is too large for a {what} (limit "
                          f"{human_size(MAX_CONFIG_BYTES)}); put bulk data in .npy/.npz files that the config names")
    try:
        with open(path, "rb") as handle:
            raw = handle.read(MAX_CONFIG_BYTES + 1)
    except OSError as err:
        raise ConfigError(f"{path}: cannot read the {what} ({err.strerror or err})") from None
    if len(raw) > MAX_CONFIG_BYTES:  # a special file that reports no size
        raise ConfigError(f"{path}: larger than {human_size(MAX_CONFIG_BYTES)}, the limit for a {what}")
    kind = sniff(raw[:8192])
    if kind is not None:
        raise ConfigError(f"{path}: not a YAML text file: it looks like {kind} (a {what} is YAML text)")
    return _decode(raw, str(path))


def load_file(path: Union[str, Path]) -> Document:
    """Read and parse a YAML file; a file that cannot be read as YAML text is a one-line :class:`ConfigError`
    naming it (:func:`read_config_text`), a YAML problem a :class:`ConfigProblems` with its line."""
    path = Path(path)
    return load_text(read_config_text(path), str(path))


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


class Threads(Spec):
    """The native engine's threads: an integer >= 1 or ``auto`` (see :func:`braincore.validation.resolve_threads`)."""

    description = "an integer >= 1 or 'auto'"

    def __init__(self, default: Any = None, doc: str = "native engine threads: N >= 1 or auto (the CPUs this "
                                                         "process may use); default $BRAINCORE_THREADS, else 1"):
        self.default, self.doc = default, doc

    def check(self, value, doc, path, problems):
        if value == "auto" or (isinstance(value, int) and not isinstance(value, bool) and value >= 1):
            return value
        problems.append(doc.problem(path, f"expected {self.description}, got {value!r}"))
        return None


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
    if data is None:
        raise ConfigProblems([FileProblem(doc.file, None, (), "empty config (no YAML content); expected a mapping "
                                                               "with a 'kind' key")])
    if not isinstance(data, Mapping):
        raise ConfigProblems([doc.problem((), "a config must be a YAML mapping with a 'kind' key")])
    kind_name = data.get("kind")
    kind = get_kind(kind_name) if isinstance(kind_name, str) else None
    if kind is None:
        load_all_kinds()
        near = difflib.get_close_matches(str(kind_name), KINDS, n=1)
        hint = f"; did you mean {near[0]!r}?" if near else ""
        what = "missing 'kind'" if kind_name is None else f"unknown kind {kind_name!r}{hint}"
        raise ConfigProblems(list(doc.duplicates) + [doc.problem(("kind",), f"{what} (expected one of: "
                                                                           f"{', '.join(sorted(KINDS))})")])
    problems: list[Problem] = list(doc.duplicates)
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


def checkout_entry_points(group: str) -> dict[str, str]:
    """The entry points of ``group`` that the ``pyproject.toml`` of the source checkout this braincore runs from
    declares (``name -> "module"`` or ``"module:attr"``), or ``{}`` when it does not run from a checkout. An
    installed package's metadata is written at install time, so a checkout that gained an entry point since (a
    worktree run with ``PYTHONPATH``, an editable install made before) still finds it."""
    path = Path(__file__).resolve().parent.parent / "pyproject.toml"
    if not path.is_file():
        return {}
    try:
        import tomllib
    except ImportError:  # Python 3.10: the installed metadata alone
        return {}
    try:
        with open(path, "rb") as handle:
            data = tomllib.load(handle)
    except (OSError, ValueError):
        return {}
    project = data.get("project") or {}
    if project.get("name") != "braincore":
        return {}
    table = (project.get("entry-points") or {}).get(group) or {}
    return {str(k): str(v) for k, v in table.items()}


def plugin_entry_points(group: str) -> dict[str, str]:
    """``name -> "module[:attr]"`` for the entry points of ``group``: the installed ones, those of the running
    source checkout's ``pyproject.toml`` taking precedence (:func:`checkout_entry_points`)."""
    from importlib.metadata import entry_points

    found = {entry.name: entry.value for entry in entry_points(group=group)}
    found.update(checkout_entry_points(group))
    return found


def load_entry_point(value: str) -> Any:
    """Import what an entry point names: ``"module"`` or ``"module:attr"``."""
    module_name, _, attr = value.partition(":")
    module = importlib.import_module(module_name.strip())
    for part in filter(None, attr.strip().split(".")):
        module = getattr(module, part)
    return module


def _load_plugin_kinds(name: Optional[str] = None) -> None:
    """Import the modules named by the ``braincore.kinds`` entry points (only the one called ``name`` when
    given; tasks register their config kinds there: ``diehl_cook = "tasks.perception.diehl_cook"`` in
    pyproject.toml), so the engine runs task configs without importing the task packages itself. A plugin that
    fails to import is reported, not fatal."""
    for entry_name, value in plugin_entry_points(_PLUGIN_GROUP).items():
        if entry_name in KINDS or (name is not None and entry_name != name):
            continue
        try:
            load_entry_point(value)
        except Exception as err:  # a broken plugin must not hide the other kinds
            import warnings

            warnings.warn(f"braincore: config kind {entry_name!r} ({value}) failed to load: {err}")


def bundled_config_dir() -> Path:
    """The folder of bundled configs: ``configs/`` of a source checkout, else the installed package data."""
    checkout = Path(__file__).resolve().parent.parent / "configs"
    if checkout.is_dir():
        return checkout
    from importlib import resources

    return Path(str(resources.files("braincore.configs")))


def bundled_configs() -> list[tuple[str, str]]:
    """Every bundled config as ``(name, description)``, sorted by name: the name relative to the bundled folder
    (``rl/cartpole.yaml``, what ``braincore run`` accepts) and the first comment line of the file."""
    base = bundled_config_dir()
    out = []
    for path in sorted(base.rglob("*.yaml")):
        if not path.is_file():
            continue
        description = ""
        try:
            with open(path, encoding="utf-8", errors="replace") as handle:
                for number, line in enumerate(handle):
                    if line.lstrip().startswith("#"):
                        description = line.strip().lstrip("#").strip()
                        break
                    if number >= 50:
                        break
        except OSError:
            pass
        out.append((path.relative_to(base).as_posix(), description))
    return out


def _bundled_candidates(path: Path) -> list[Path]:
    """Names to try in the bundled folder for a relative ``path``: as given, and without a leading ``configs/``
    (a path written from the repository root), each also with ``.yaml`` added."""
    names = [path]
    if len(path.parts) > 1 and path.parts[0] == "configs":
        names.append(Path(*path.parts[1:]))
    out = []
    for name in names:
        out.append(name)
        if name.suffix not in (".yaml", ".yml"):
            out.append(name.with_name(name.name + ".yaml"))
    return out


def resolve_config_path(name: Union[str, Path]) -> Path:
    """The file a config path names: the path itself (relative to the current folder, or absolute) when that is
    a file, else a bundled config of that relative name (``lif_family``, ``lif_family.yaml``,
    ``configs/lif_family.yaml`` or ``configs/rl/cartpole.yaml`` from any folder). A path that is neither is a
    :class:`ConfigError` that names it (and the nearest bundled names)."""
    raw = str(name)
    if not raw.strip():
        raise ConfigError("no config file given (an empty path)")
    path = Path(raw).expanduser()
    if path.is_file():
        return path
    bundled = bundled_config_dir()
    if not path.is_absolute():
        root = bundled.resolve()
        for candidate in _bundled_candidates(path):
            full = bundled / candidate
            if full.is_file() and full.resolve().is_relative_to(root):
                return full
    if path.is_dir():
        raise ConfigError(f"{name}: is a folder, not a config file")
    names = [n for n, _ in bundled_configs()]
    stripped = _bundled_candidates(path)[-1].as_posix() if not path.is_absolute() else path.name
    near = difflib.get_close_matches(stripped, names, n=3, cutoff=0.6)
    hint = f"; did you mean {', '.join(near)}?" if near else "; `braincore configs` lists them"
    raise ConfigError(f"{name}: no such config file (nor a bundled config of that name in {bundled}){hint}")
