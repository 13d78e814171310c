import pytest

from braincore.units import UnitError, dimension_of, format_quantity, parse_quantity


@pytest.mark.parametrize("text, dimension, expected", [
    ("20 ms", "time", 20.0), ("0.5 s", "time", 500.0), ("250 us", "time", 0.25),
    ("-65 mV", "voltage", -65.0), ("-0.07 V", "voltage", -70.0),
    ("5 Hz", "frequency", 5.0), ("2 kHz", "frequency", 2000.0),
    ("0.6 nS", "conductance", 0.6), ("1 uS", "conductance", 1000.0),
    ("300 pA", "current", 0.3), ("1 nA", "current", 1.0),
    ("281 pF", "capacitance", 281.0), ("1e8 Ohm", "resistance", 100.0), ("100 MΩ", "resistance", 100.0),
    ("10 uA/cm2", "current_density", 10.0), ("120 mS/cm^2", "conductance_density", 120.0),
    ("1 uF/cm**2", "capacitance_density", 1.0), (3, "time", 3.0), ("1.5e-3", "dimensionless", 1.5e-3),
])
def test_parse_quantity(text, dimension, expected):
    assert parse_quantity(text, dimension) == pytest.approx(expected)


def test_wrong_dimension_and_unknown_units_are_clear():
    with pytest.raises(UnitError, match="is a voltage, expected a time"):
        parse_quantity("20 mV", "time")
    with pytest.raises(UnitError, match="unknown unit 'parsec'"):
        parse_quantity("3 parsec", "time")
    with pytest.raises(UnitError, match="cannot read"):
        parse_quantity("fast", "time")
    with pytest.raises(UnitError, match="boolean"):
        parse_quantity(True, "time")
    assert dimension_of("mS/cm2") == "conductance_density"
    assert format_quantity(20.0, "time") == "20 ms"
