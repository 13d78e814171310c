"""YAML configs (errors with file, line and key) and the braincore command."""
import json
from pathlib import Path

import pytest

from braincore.cli import main
from braincore.config import ConfigProblems, bundled_config_dir, load_config, load_text, validate

GOOD = """\
kind: neuron_gallery
dt: 0.1 ms
duration: 60 ms
stimulus: {onset: 5 ms}
panels:
  - {model: lif, current: 0.3 nA}
  - model: alif
    current: 400 pA
    params: {beta: 2 mV}
"""


def test_valid_config_is_parsed_with_units():
    kind, config = validate(load_text(GOOD, "good.yaml"))
    assert kind.name == "neuron_gallery"
    assert config["panels"][1]["current"] == pytest.approx(0.4)
    assert config["stimulus"]["onset"] == 5.0


def test_every_problem_is_reported_with_file_line_and_key():
    bad = """\
kind: neuron_gallery
dt: -1 ms
duratoin: 50 ms
panels:
  - {model: lfi, current: 0.3 nA}
  - model: lif
    current: 3 mV
    params:
      tau_m: 20 mV
      t_ref: -1 ms
"""
    with pytest.raises(ConfigProblems) as info:
        validate(load_text(bad, "bad.yaml"))
    text = [str(p) for p in info.value.problems]
    expected = [
        ("bad.yaml:2: dt:", "must be > 0 ms"),
        ("bad.yaml:3: duratoin:", "did you mean 'duration'"),
        ("bad.yaml:5: panels[0].model:", "did you mean 'lif'"),
        ("bad.yaml:7: panels[1].current:", "expected a current"),
        ("bad.yaml:9: panels[1].params.tau_m:", "expected a time"),
        ("bad.yaml:10: panels[1].params.t_ref:", "t_ref must be >= 0"),
    ]
    for where, what in expected:
        assert any(t.startswith(where) and what in t for t in text), (where, what, text)
    assert len(text) == len(expected)


def test_yaml_syntax_error_names_the_line():
    with pytest.raises(ConfigProblems, match=r"x.yaml:3: .*YAML syntax error: mapping values are not allowed"):
        load_text("kind: neuron_gallery\ndt: 0.1 ms\n  bad: indent\n", "x.yaml")


def test_unknown_kind_and_non_mapping():
    with pytest.raises(ConfigProblems, match="unknown kind 'neuron_galery'; did you mean 'neuron_gallery'"):
        validate(load_text("kind: neuron_galery\n", "k.yaml"))
    with pytest.raises(ConfigProblems, match="must be a YAML mapping"):
        validate(load_text("- 1\n- 2\n", "l.yaml"))


def test_yaml_is_loaded_safely():
    # python/object tags must not be constructed
    with pytest.raises(ConfigProblems, match="YAML syntax error|could not determine a constructor"):
        load_text("kind: !!python/object/apply:os.system ['true']\n", "evil.yaml")


def test_every_bundled_config_validates():
    configs = sorted(bundled_config_dir().rglob("*.yaml"))
    assert configs
    for path in configs:
        load_config(path)


def test_cli_run_prints_json_summary_last(tmp_path, capsys):
    path = tmp_path / "g.yaml"
    path.write_text(GOOD)
    assert main(["run", str(path), "--out", str(tmp_path), "--json"]) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    summary = json.loads(last)
    assert summary["ok"] is True and summary["kind"] == "neuron_gallery"
    lif = summary["panels"][0]
    assert lif["spikes"] > 0 and lif["rate_hz"] > 0
    assert Path(summary["png"]).is_file()


def test_cli_validate_exits_nonzero_with_one_line_reason(tmp_path, capsys):
    path = tmp_path / "bad.yaml"
    path.write_text("kind: neuron_gallery\npanels: []\n")
    assert main(["validate", str(path)]) == 1
    captured = capsys.readouterr()
    assert "panels: expected at least 1 item(s)" in captured.out
    assert captured.err.strip().splitlines()[-1].startswith("braincore validate: error: 1 problem(s)")


def test_cli_missing_file_and_unknown_model(tmp_path, capsys):
    assert main(["run", str(tmp_path / "nope.yaml")]) == 1
    assert "no such config file" in capsys.readouterr().err
    assert main(["plot", "neuron", "lfi", "--out", str(tmp_path / "x.png")]) == 1
    assert "did you mean 'lif'" in capsys.readouterr().err


def test_cli_plot_neuron_writes_png(tmp_path, capsys):
    out = tmp_path / "lif.png"
    assert main(["plot", "neuron", "lif", "--current", "0.3 nA", "--duration", "100 ms", "--out", str(out),
                 "--json"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out.is_file() and out.stat().st_size > 5000
    assert summary["spikes"] > 0


def test_cli_models_lists_parameters(capsys):
    assert main(["models", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["models"]["lif"]["params"]["tau_m"] == {"default": 20.0, "unit": "ms"}
