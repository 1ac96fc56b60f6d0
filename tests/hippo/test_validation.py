"""Bad input to every public hippo function: ValueError/TypeError naming the argument, what it expects and
what it got."""
import math

import numpy as np
import pytest

from ssm import hippo

A3, B3 = np.eye(3), np.ones(3)
TF = hippo.transfer_function
NAN3 = np.array([1.0, math.nan, 2.0])
INF33 = np.diag([math.inf, 1.0, -math.inf])

# (function, args, kwargs, exception, regex over the message: the argument, the expectation, the value received)
CASES = [
    (hippo.transition, ("legx", 8), {}, ValueError, r"measure must be one of .*'legs'.* got 'legx'"),
    (hippo.transition, (3, 8), {}, TypeError, r"measure must be a str.* got 3 \(int\)"),
    (hippo.transition, ("legs", 0), {}, ValueError, r"N must be an int >= 1, got 0"),
    (hippo.transition, ("legs", -4), {}, ValueError, r"N must be an int >= 1, got -4"),
    (hippo.transition, ("legs", 8.0), {}, TypeError, r"N must be an int >= 1, got 8.0 \(float\)"),
    (hippo.transition, ("legs", True), {}, TypeError, r"N must be an int >= 1, got True \(bool\)"),
    (hippo.transition, ("legs", "8"), {}, TypeError, r"N must be an int >= 1, got '8' \(str\)"),
    (hippo.transition, ("legs", 8), {"convention": "official"}, ValueError,
     r"convention must be one of .*'s4'.* got 'official'"),
    (hippo.transition, ("fourier", 7), {"convention": "s4"}, ValueError, r"N must be even .*pairs.*got 7"),
    (hippo.rank_correction, ("legt", 8), {"rank": 1}, ValueError, r"rank must be >= 2 for measure 'legt'.* got 1"),
    (hippo.rank_correction, ("legs", 8), {"rank": 0}, ValueError, r"rank must be an int >= 1, got 0"),
    (hippo.rank_correction, ("legs", 8), {"rank": 1.5}, TypeError, r"rank must be an int >= 1, got 1.5 \(float\)"),
    (hippo.rank_correction, ("lagx", 8), {}, ValueError, r"measure must be one of .* got 'lagx'"),
    (hippo.nplr, ("legs", 2.5), {}, TypeError, r"N must be an int >= 1, got 2.5 \(float\)"),
    (hippo.nplr, ("legt", 8), {"rank": 1}, ValueError, r"rank must be >= 2 for measure 'legt'.* got 1"),
    (hippo.nplr, ("fourier", 9), {"convention": "s4"}, ValueError, r"N must be even .*got 9"),
    (hippo.nplr, ("legs", 8), {"convention": 2}, TypeError, r"convention must be a str.* got 2 \(int\)"),
    (hippo.normal_eig, (np.ones((3, 4)),), {}, ValueError,
     r"AN must be a finite real square matrix .* got shape \(3, 4\)"),
    (hippo.normal_eig, (np.ones((3, 3)),), {}, ValueError, r"not \(scalar \+ skew-symmetric\)"),
    (hippo.diag_init, ("foo", 8), {}, ValueError, r"kind must be one of .*'inv'.* got 'foo'"),
    (hippo.diag_init, ("legs", 7), {}, ValueError, r"N must be even \(diagonal inits .*\), got 7"),
    (hippo.diag_init, ("legs", 0), {}, ValueError, r"N must be an int >= 2, got 0"),
    (hippo.diag_init, ("inv", 8.0), {}, TypeError, r"N must be an int >= 2, got 8.0 \(float\)"),
    (hippo.diag_init, ("inv", False), {}, TypeError, r"N must be an int >= 2, got False \(bool\)"),
    (hippo.diag_init, ("dss", 8), {"seed": -1}, ValueError, r"seed must be an int >= 0, got -1"),
    (hippo.diag_init, ("dss", 8), {"seed": 1.0}, TypeError, r"seed must be an int >= 0, got 1.0 \(float\)"),
    (hippo.ptd, ("legt", 8), {}, ValueError,
     r"measure must be one of \['legs', 'lagt', 'fourier'\] for ptd.* got 'legt'"),
    (hippo.ptd, ("legx", 8), {}, ValueError, r"measure must be one of .* got 'legx'"),
    (hippo.ptd, ("fourier", 8), {}, ValueError, r"N must be odd for measure 'fourier' .*got 8"),
    (hippo.ptd, ("legs", 0), {}, ValueError, r"N must be an int >= 1, got 0"),
    (hippo.ptd, ("legs", -1), {}, ValueError, r"N must be an int >= 1, got -1"),
    (hippo.ptd, ("legs", 16.0), {}, TypeError, r"N must be an int >= 1, got 16.0 \(float\)"),
    (hippo.ptd, ("legs", True), {}, TypeError, r"N must be an int >= 1, got True \(bool\)"),
    (hippo.ptd, ("legs", 1024), {}, ValueError, r"N must be <= 512 for ptd, got 1024: it would take about"),
    (hippo.ptd, ("legs", 8), {"eps": 2.0}, ValueError, r"eps must be > 0 and < 1.0, got 2.0"),
    (hippo.ptd, ("legs", 8), {"eps": 0}, ValueError, r"eps must be > 0 and < 1.0, got 0"),
    (hippo.ptd, ("legs", 8), {"eps": "0.1"}, TypeError, r"eps must be a real number, got '0.1' \(str\)"),
    (hippo.ptd, ("legs", 8), {"weight": 0.0}, ValueError, r"weight must be > 0, got 0.0"),
    (hippo.ptd, ("legs", 8), {"transfer_weight": -1.0}, ValueError, r"transfer_weight must be >= 0, got -1.0"),
    (hippo.ptd, ("legs", 8), {"seed": -3}, ValueError, r"seed must be an int >= 0, got -3"),
    (TF, (NAN3, B3, B3, [1j]), {}, ValueError, r"Lambda_or_A must be finite, got 1 non-finite entry"),
    (TF, (INF33, B3, B3, [1j]), {}, ValueError, r"Lambda_or_A must be finite, got 2 non-finite entries"),
    (TF, (A3, NAN3, B3, [1j]), {}, ValueError, r"B must be finite, got 1 non-finite entry"),
    (TF, (A3, B3, NAN3, [1j]), {}, ValueError, r"C must be finite"),
    (TF, (A3, B3, B3, [1j, math.inf]), {}, ValueError, r"s must be finite"),
    (TF, (np.ones((3, 4)), B3, B3, [1j]), {}, ValueError,
     r"Lambda_or_A must have shape \(N,\) or \(N, N\).* got \(3, 4\)"),
    (TF, (np.ones((2, 2, 2)), B3, B3, [1j]), {}, ValueError, r"Lambda_or_A must have shape .* got \(2, 2, 2\)"),
    (TF, (np.ones(0), B3, B3, [1j]), {}, ValueError, r"Lambda_or_A must have shape .* got \(0,\)"),
    (TF, (A3, np.ones(4), B3, [1j]), {}, ValueError, r"B must have shape \(N,\) = \(3,\), got \(4,\)"),
    (TF, (A3, B3, np.ones((3, 1)), [1j]), {}, ValueError, r"C must have shape \(N,\) = \(3,\), got \(3, 1\)"),
    (TF, (A3, B3, B3, np.ones((2, 2))), {}, ValueError, r"s must be a scalar or have shape \(S,\), got \(2, 2\)"),
    (TF, ("abc", B3, B3, [1j]), {}, TypeError, r"Lambda_or_A must be a numeric array.* got dtype <U3"),
    (TF, (A3, [1, [2, 3]], B3, [1j]), {}, TypeError, r"B must be a numeric array"),
    (hippo.transfer_evaluator, (A3, B3, None), {}, TypeError, r"C must be a numeric array.* got dtype object"),
    (hippo.frequency_grid, (0,), {}, ValueError, r"N must be an int >= 1, got 0"),
    (hippo.frequency_grid, (8,), {"points": 1}, ValueError, r"points must be an int >= 2, got 1"),
    (hippo.frequency_grid, (8, NAN3), {}, ValueError, r"poles\[0\] must be finite"),
    (hippo.sup_on_axis, (None, np.arange(5.0)), {}, TypeError, r"gap must be a callable .* got None \(NoneType\)"),
    (hippo.sup_on_axis, (np.abs, np.arange(2.0)), {}, ValueError,
     r"omega must have shape \(S,\) with S >= 3, got \(2,\)"),
    (hippo.sup_on_axis, (np.abs, np.arange(-1.0, 4)), {}, ValueError,
     r"omega must be real and >= 0, got entries down to -1.0"),
    (hippo.ptd_table, (8,), {}, TypeError, r"Ns must be a sequence of ints, got 8 \(int\)"),
    (hippo.ptd_table, ([0],), {}, ValueError, r"N must be an int >= 1, got 0"),
    (hippo.ptd_table, ([8],), {"measure": "legt"}, ValueError, r"measure must be one of .* for ptd"),
    (hippo.format_table, ([{"N": 8}],), {}, TypeError, r"rows must be a list of ptd_table rows"),
]


@pytest.mark.parametrize("fn,args,kwargs,exc,message", CASES,
                         ids=[f"{c[0].__name__}-{i}" for i, c in enumerate(CASES)])
def test_bad_input_is_refused_with_a_message(fn, args, kwargs, exc, message):
    with pytest.raises(exc, match=message):
        fn(*args, **kwargs)


def test_report_command_line_errors(capsys):
    assert hippo.main([]) == 2 and "usage" in capsys.readouterr().err
    assert hippo.main(["report", "eight"]) == 2 and "eight" in capsys.readouterr().err
    assert hippo.main(["report", "2048"]) == 2 and "N must be <= 512" in capsys.readouterr().err
