"""The fixed-point emulator (edgekd.hls.emulate) against hls4ml's g++ C-simulation, bit for bit.

Fast tests check the casting arithmetic against hand-worked tables; the slow ones compile small
hls4ml models (PyTorch frontend, explicit precisions: every rounding and overflow mode, negative ties,
saturation, widths up to 32 bits) once per module, through the C-simulation compile cache.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edgekd.hls.emulate import Emulator, FixedType, UnsupportedLayerError, quantize_float, requantize

# -------------------------------------------------------------------------------------------------
# Fast: casting arithmetic
# -------------------------------------------------------------------------------------------------

TIES = [-2.5, -1.5, -0.5, 0.5, 1.5, 2.5, -1.25, 1.75]
EXPECTED = {
    "TRN": [-3, -2, -1, 0, 1, 2, -2, 1],
    "TRN_ZERO": [-2, -1, 0, 0, 1, 2, -1, 1],
    "RND": [-2, -1, 0, 1, 2, 3, -1, 2],
    "RND_ZERO": [-2, -1, 0, 0, 1, 2, -1, 2],
    "RND_MIN_INF": [-3, -2, -1, 0, 1, 2, -1, 2],
    "RND_INF": [-3, -2, -1, 1, 2, 3, -1, 2],
    "RND_CONV": [-2, -2, 0, 0, 2, 2, -1, 2],
}


@pytest.mark.parametrize("engine", ["torch", "int"])
@pytest.mark.parametrize("mode", list(EXPECTED))
def test_rounding_modes_on_ties(mode, engine):
    t = FixedType(8, 8, True, mode, "SAT")
    ints = [int(v * 4) for v in TIES]  # 2 fractional bits -> 0
    x = torch.tensor(ints, dtype=torch.float64) if engine == "torch" else np.array(ints, dtype=object)
    got = [int(v) for v in requantize(x, 2, t)]
    assert got == EXPECTED[mode]
    assert [int(v) for v in quantize_float(np.array(TIES), t)] == EXPECTED[mode]


@pytest.mark.parametrize("sat,expected", [
    ("WRAP", [-128 + 2, 127 - 2, 0, -128]),
    ("SAT", [127, -128, 0, -128]),
    ("SAT_SYM", [127, -127, 0, -127]),
    ("SAT_ZERO", [0, 0, 0, -128]),
])
def test_overflow_modes(sat, expected):
    t = FixedType(8, 8, True, "TRN", sat)
    x = np.array([130, -131, 0, -128], dtype=object)
    assert [int(v) for v in requantize(x, 0, t)] == expected


def test_unsigned_and_wide_types():
    u = FixedType(4, 2, False, "RND_CONV", "SAT")
    assert [int(v) for v in quantize_float(np.array([-1.0, 0.125, 0.375, 9.0]), u)] == [0, 0, 2, 15]
    w = FixedType(32, 4, True, "RND_CONV", "SAT")
    x = np.array([2**40 + 2**8, -(2**70)], dtype=object)  # 60 fractional bits -> 28
    got = requantize(x, 60, w)
    assert int(got[0]) == 2**8 and int(got[1]) == w.lo
    assert FixedType.parse("ufixed<8,0,AP_RND_CONV,AP_SAT>") == FixedType(8, 0, False, "RND_CONV", "SAT")
    assert FixedType.parse("int<8>") == FixedType(8, 8, True)


@pytest.mark.parametrize("relu", [False, True])
@pytest.mark.parametrize("spec", ["fixed<8,3,RND_CONV,SAT>", "ufixed<6,2,RND_CONV,SAT>", "fixed<7,2,TRN,SAT_SYM>",
                                  "ufixed<8,1,TRN,SAT_SYM>", "fixed<6,4,RND_CONV,WRAP>", "fixed<9,3,RND,SAT_ZERO>"])
def test_cast_shortcuts_equal_general_path(spec, relu):
    """The fused float32 round/saturate(/relu) cast and the range-based skips equal the Python-int path."""
    from edgekd.hls.emulate import _cast, _Tensor

    t = FixedType.parse(spec)
    rng = np.random.default_rng(7)
    ints = rng.integers(-(2**15), 2**15, size=4000)
    ints[:64] = np.arange(-32, 32) * 2**7  # exact ties at the 2^-8 -> 2^-t.frac step
    for frac in (8, t.frac):  # a coarser target grid, and the same grid (identity or overflow only)
        x = _Tensor(torch.tensor(ints, dtype=torch.float32), frac, int(ints.min()), int(ints.max()))
        want = np.array([max(int(v), 0) if relu else int(v) for v in ints], dtype=object)
        want = [int(v) for v in requantize(want, frac, t)]
        got = _cast(x, t, relu=relu)
        assert [int(v) for v in got.data] == want
        assert got.lo <= min(want) and max(want) <= got.hi


# -------------------------------------------------------------------------------------------------
# hls4ml models (PyTorch frontend) with explicit precisions
# -------------------------------------------------------------------------------------------------

PRECISIONS = {
    "auto": {},
    # result one bit coarser than the accumulator: half the outputs are ties, many negative
    "ties_sat": {
        "conv": {"weight": "fixed<6,1,RND_CONV,SAT>", "bias": "fixed<8,2>", "accum": "fixed<20,8>",
                 "result": "fixed<8,3,RND_ZERO,SAT_SYM>"},
        "relu": {"result": "ufixed<6,2,RND_INF,SAT>"},
        "dense": {"weight": "fixed<5,1>", "bias": "fixed<6,2>", "accum": "fixed<18,6,TRN,WRAP>",
                  "result": "fixed<6,2,RND,SAT_ZERO>"},
    },
    # 32-bit types; a coarse accumulator rounds every product (per-product path) and wraps
    "wide32": {
        "input": "fixed<32,12>",
        "conv": {"weight": "fixed<32,4,RND_CONV,SAT>", "bias": "fixed<32,8>", "accum": "fixed<32,14,TRN_ZERO,WRAP>",
                 "result": "fixed<32,10,RND_MIN_INF,SAT>"},
        "relu": {"result": "ufixed<24,8,RND_CONV,SAT>"},
        "dense": {"weight": "fixed<16,2>", "bias": "fixed<16,4>", "accum": "fixed<32,12>",
                  "result": "fixed<12,4,RND_CONV,WRAP>"},
    },
}


def _net(kind: str) -> torch.nn.Module:
    torch.manual_seed(3 if kind == "conv2d" else 4)
    if kind == "conv2d":
        layers = [torch.nn.Conv2d(2, 3, 3), torch.nn.MaxPool2d(2), torch.nn.ReLU(), torch.nn.Flatten(),
                  torch.nn.Linear(12, 3)]
    else:
        layers = [torch.nn.Conv1d(2, 3, 3), torch.nn.ReLU(), torch.nn.MaxPool1d(2), torch.nn.Flatten(),
                  torch.nn.Linear(9, 3)]
    net = torch.nn.Sequential(*layers).eval()
    with torch.no_grad():
        for p in net.parameters():
            p.mul_(3.0)
    return net


def _in_shape(kind: str) -> tuple[int, ...]:
    return (2, 6, 6) if kind == "conv2d" else (2, 8)


def build_model(kind: str, precision: str, io_type: str, out_dir, cache_dir):
    import hls4ml

    from edgekd.hls.convert import quiet_hls4ml
    from edgekd.hls.csim_cache import compile_cached

    net = _net(kind)
    spec = PRECISIONS[precision]
    with quiet_hls4ml():
        cfg = hls4ml.utils.config_from_pytorch_model(
            net, _in_shape(kind), granularity="name", backend="Vitis",
            default_precision=spec.get("input", "fixed<16,6>"))
        names = list(cfg["LayerName"])
        roles = {"conv": [n for n in names if n == "_0"], "dense": ["_4"],
                 "relu": ["_2" if kind == "conv2d" else "_1"]}
        for role, layer_names in roles.items():
            for n in layer_names:
                if role in spec:
                    cfg["LayerName"][n]["Precision"].update(spec[role])
        hm = hls4ml.converters.convert_from_pytorch_model(
            net, hls_config=cfg, io_type=io_type, backend="Vitis", output_dir=str(out_dir))
        compile_cached(hm, cache_dir)
    return hm


def _inputs(kind: str, n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = rng.normal(0.0, 3.0, size=(n, *_in_shape(kind)))
    x[: n // 4] *= 40.0  # far out of range: saturation and wrap-around everywhere
    return np.round(x * 2**8) / 2**8


def _csim(hm, x: np.ndarray) -> np.ndarray:
    # the PyTorch frontend keeps a channels-first input and transposes inside, like edgekd's QONNX
    return np.asarray(hm.predict(np.ascontiguousarray(x.reshape(x.shape[0], -1)))).reshape(x.shape[0], -1)


CASES = [(k, p, io) for k in ("conv2d", "conv1d") for p in PRECISIONS for io in ("io_parallel", "io_stream")]


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    cache = tmp_path_factory.mktemp("csim_cache")
    built = {}

    def get(kind, precision, io_type):
        key = (kind, precision, io_type)
        if key not in built:
            built[key] = build_model(kind, precision, io_type,
                                     tmp_path_factory.mktemp(f"{kind}_{precision}_{io_type}"), cache)
        return built[key]

    return get


@pytest.mark.slow
@pytest.mark.parametrize("kind,precision,io_type", CASES)
def test_emulator_equals_csim(models, kind, precision, io_type):
    hm = models(kind, precision, io_type)
    emu = Emulator(hm)
    x = _inputs(kind, 64)
    y_c, y_e = _csim(hm, x), emu.predict(x)
    assert y_c.shape == y_e.shape
    np.testing.assert_array_equal(y_e, y_c)
    emu.chunk_size = 7  # chunking never changes a result
    np.testing.assert_array_equal(emu.predict(x, batch_size=20), y_c)
    # and layer by layer on a few samples (every intermediate type; tracing recompiles, so once)
    if (kind, precision, io_type) == ("conv2d", "ties_sat", "io_stream"):
        from edgekd.hls.csim import trace_csim

        xs = x[:3]
        tc, te = trace_csim(hm, xs.reshape(3, -1)), emu.trace(xs)
        for name, arr in te.items():
            if name in tc:
                np.testing.assert_array_equal(arr, tc[name].reshape(arr.shape), err_msg=name)


@pytest.mark.slow
def test_compile_cache_reuses_library(models, tmp_path):
    from edgekd.hls.csim_cache import compile_cached

    hm = models("conv1d", "auto", "io_parallel")
    info = compile_cached(hm, tmp_path / "c1")
    assert info["cached"] is False
    again = compile_cached(hm, tmp_path / "c1")
    assert again["cached"] is True and again["hash"] == info["hash"]
    x = _inputs("conv1d", 8)
    np.testing.assert_array_equal(_csim(hm, x), Emulator(hm).predict(x))


def test_unsupported_layer_is_refused_by_name(tmp_path):
    import hls4ml

    from edgekd.hls.convert import quiet_hls4ml

    net = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Sigmoid()).eval()
    with quiet_hls4ml():
        cfg = hls4ml.utils.config_from_pytorch_model(net, (4,), granularity="name", backend="Vitis")
        hm = hls4ml.converters.convert_from_pytorch_model(net, hls_config=cfg, io_type="io_parallel",
                                                          backend="Vitis", output_dir=str(tmp_path / "p"))
    with pytest.raises(UnsupportedLayerError, match="'_1'.*sigmoid") as err:
        Emulator(hm)
    assert err.value.layer == "_1"


# -------------------------------------------------------------------------------------------------
# Property: random dense layer, random types and inputs
# -------------------------------------------------------------------------------------------------

_MODES_Q = ["TRN", "TRN_ZERO", "RND", "RND_ZERO", "RND_MIN_INF", "RND_INF", "RND_CONV"]
_MODES_O = ["WRAP", "SAT", "SAT_SYM", "SAT_ZERO"]


@st.composite
def _dense_case(draw):
    n_in = draw(st.integers(1, 6))
    n_out = draw(st.integers(1, 4))
    w_bits = draw(st.integers(2, 16))
    a_bits = draw(st.integers(8, 32))
    r_bits = draw(st.integers(2, 32))
    prec = {
        "weight": f"fixed<{w_bits},{draw(st.integers(-2, 3))},{draw(st.sampled_from(_MODES_Q))},SAT>",
        "bias": f"fixed<{draw(st.integers(2, 16))},{draw(st.integers(-2, 4))}>",
        "accum": f"fixed<{a_bits},{draw(st.integers(4, min(a_bits, 16)))}>",
        "result": (f"{draw(st.sampled_from(['', 'u']))}fixed<{r_bits},{draw(st.integers(-2, min(r_bits, 12)))},"
                   f"{draw(st.sampled_from(_MODES_Q))},{draw(st.sampled_from(_MODES_O))}>"),
    }
    in_prec = f"fixed<{draw(st.integers(4, 24))},{draw(st.integers(1, 8))}>"
    seed = draw(st.integers(0, 2**16))
    return n_in, n_out, prec, in_prec, seed


@pytest.mark.slow
@settings(max_examples=4, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=_dense_case())
def test_property_random_dense(tmp_path_factory, case):
    import hls4ml

    from edgekd.hls.convert import quiet_hls4ml
    from edgekd.hls.csim_cache import compile_cached

    n_in, n_out, prec, in_prec, seed = case
    torch.manual_seed(seed)
    net = torch.nn.Sequential(torch.nn.Linear(n_in, n_out)).eval()
    with torch.no_grad():
        for p in net.parameters():
            p.mul_(4.0)
    out = tmp_path_factory.mktemp("prop")
    with quiet_hls4ml():
        cfg = hls4ml.utils.config_from_pytorch_model(net, (n_in,), granularity="name", backend="Vitis",
                                                     default_precision=in_prec)
        cfg["LayerName"]["_0"]["Precision"].update(prec)
        hm = hls4ml.converters.convert_from_pytorch_model(net, hls_config=cfg, io_type="io_parallel",
                                                          backend="Vitis", output_dir=str(out / "p"))
    try:
        emu = Emulator(hm)
    except UnsupportedLayerError as err:  # refused (saturating accumulator may overflow): allowed, named
        assert err.layer == "_0"
        return
    with quiet_hls4ml():
        compile_cached(hm, out / "cache")
    rng = np.random.default_rng(seed)
    x = rng.normal(0, 8.0, size=(48, n_in)) * rng.choice([0.01, 1.0, 100.0], size=(48, 1))
    y_c = np.asarray(hm.predict(np.ascontiguousarray(x))).reshape(48, -1)
    np.testing.assert_array_equal(emu.predict(x), y_c)
