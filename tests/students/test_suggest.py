"""edgekd suggest-student: candidates, the hls4ml-mirroring latency specs, DisWOT distances, the command."""

import json
import math

import pytest
import torch
from typer.testing import CliRunner

from edgekd.config import HLSConfig, StudentConfig
from edgekd.estimate import estimate
from edgekd.students.suggest import (
    Candidate,
    SuggestError,
    candidate_configs,
    cell_cnn_layer_specs,
    class_activation_gram,
    diswot_distances,
    make_candidates,
    relation_gram,
    spearman,
)


def test_candidate_grid_and_budget():
    base = StudentConfig(input_size=16)
    cands = candidate_configs(base, widths=(4, 8), depths=(1, 2), bits=(4, 8))
    # depth 1: (4), (8); depth 2: (4,4), (4,8), (8,8) -> 5 architectures x 2 bit widths
    assert len(cands) == 10
    assert {tuple(c.channels) for c in cands} == {(4,), (8,), (4, 4), (4, 8), (8, 8)}
    assert all(c.weight_bits == c.act_bits and c.kernel_sizes == [3] * len(c.channels) for c in cands)
    # 16 -> 14 -> 7 -> 5 -> 2 -> 0: depth 3 does not fit a 16x16 input and is left out
    assert candidate_configs(base, widths=(4,), depths=(3,), bits=(8,)) == []
    hls = HLSConfig()
    kept = make_candidates(base, 2, hls, budget_params=300, budget_latency_us=None, widths=(4, 8), depths=(1, 2),
                           bits=(8,))
    # params: (4): 40 + 4*7*7*2+2 = 434; (4,4): 40 + 148 + 4*2*2*2+2 = 222; (4,8): 40+296+66 = 402
    assert [tuple(c.student.channels) for c in kept] == [(4, 4)] and kept[0].params == 222
    with pytest.raises(SuggestError, match="cell_cnn"):
        candidate_configs(StudentConfig(name="wav2small_hw"))


def test_layer_specs_match_the_hls4ml_model_graph(tmp_path):
    """The analytic layer list gives the same latency as the LayerSpecs read from a converted hls4ml model."""
    from edgekd.export.qonnx import export_student_qonnx
    from edgekd.hls.convert import convert_to_hls
    from edgekd.estimate import layers_from_hls_model
    from edgekd.students.cell_cnn import build_cell_cnn, calibrate, input_quant_format

    cfg = StudentConfig(input_size=20, channels=[4, 6], kernel_sizes=[3, 3], weight_bits=[4, 6, 8], act_bits=[6, 4],
                        input_bits=6)
    hls = HLSConfig(io_type="io_stream", reuse_factor=2)
    torch.manual_seed(0)
    model = build_cell_cnn(cfg, 2)
    calibrate(model, torch.randn(32, 1, 20, 20))
    model.eval()
    path = export_student_qonnx(model, (1, 20, 20), tmp_path)
    hls_model, _ = convert_to_hls(path, hls, tmp_path / "prj", input_quant_format(model).hls_type(), compile_model=False)
    real = layers_from_hls_model(hls_model)
    ours = cell_cnn_layer_specs(cfg, 2, hls)
    assert [(s.type, s.in_shape, s.out_shape) for s in ours] == [(s.type, s.in_shape, s.out_shape) for s in real]
    assert [(s.weight_bits, s.input_bits) for s in ours if s.type in ("Conv2D", "Dense")] == [
        (s.weight_bits, s.input_bits) for s in real if s.type in ("Conv2D", "Dense")
    ]
    a, b = estimate(ours, 250.0, "io_stream"), estimate(real, 250.0, "io_stream")
    assert a["cycles"] == b["cycles"] and a["ii_cycles"] == b["ii_cycles"]
    assert a["cycles"] > 2 * 20 * 20  # reuse factor 2: the first conv reads one pixel per 2 cycles


def test_spearman_by_hand():
    assert spearman([1, 2, 3, 4], [1, 3, 2, 4]) == pytest.approx(0.8)  # 1 - 6 * 2 / (4 * 15)
    assert spearman([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)
    # ties get average ranks: a -> [0.5, 0.5, 2], b -> [0, 1, 2]; r = 1.5 / sqrt(1.5 * 2)
    assert spearman([1, 1, 2], [1, 2, 3]) == pytest.approx(1.5 / math.sqrt(3.0))


def test_relation_and_activation_grams_by_hand():
    f = torch.tensor([[1.0, 0.0], [1.0, 1.0]]).view(2, 2, 1, 1)
    r = 1 / math.sqrt(2)
    assert torch.allclose(relation_gram(f), torch.tensor([[r, r], [1 / math.sqrt(5), 2 / math.sqrt(5)]]))
    # one channel, 1x1 map: cam = relu(grad * feature) per sample -> [2, 3]; Gram [[4, 6], [6, 9]] / 13
    feat = torch.tensor([1.0, 3.0]).view(2, 1, 1, 1)
    grad = torch.tensor([2.0, 1.0]).view(2, 1, 1, 1)
    g = class_activation_gram(feat, grad)
    assert torch.allclose(g, torch.tensor([[4.0, 6.0], [6.0, 9.0]]) / 13.0, atol=1e-6)  # 8x8 upsampled: same ratios
    maps = (torch.randn(6, 3, 4, 4).relu(), torch.randn(6, 3, 4, 4))
    assert diswot_distances(maps, maps) == (0.0, 0.0)
    other = (torch.randn(6, 5, 2, 2).relu(), torch.randn(6, 5, 2, 2))
    d_sem, d_rel = diswot_distances(maps, other)
    assert 0 < d_sem <= math.sqrt(2) + 1e-6 and 0 < d_rel <= 2


def _tiny_config(tmp_path):
    cfg = tmp_path / "tiny.yaml"
    cfg.write_text(
        "name: tiny\n"
        "data: {synthetic: {n_train: 64, n_test: 16}}\n"
        "teacher: {width: 4, input_size: 16}\n"
        "student: {input_size: 16, channels: [4, 4]}\n"
    )
    return cfg


def test_suggest_student_command(tmp_path):
    from edgekd.cli import app

    out = tmp_path / "s.json"
    res = CliRunner().invoke(
        app, ["suggest-student", str(_tiny_config(tmp_path)), "--budget-params", "700", "--top", "3", "--batch", "16",
              "--out", str(out)],
    )
    assert res.exit_code == 0, res.output
    result = json.loads(out.read_text())
    cands = result["candidates"]
    # widths 4..32, depth 1-2 at 16x16; <= 700 params: (4) 434, (4,4) 222, (4,8) 402; (8) 786, (4,16) 762 and
    # (8,8) 730 are over; 3 architectures x 3 bit widths
    assert {tuple(c["channels"]) for c in cands} == {(4,), (4, 4), (4, 8)} and len(cands) == 9
    assert sorted({c["params"] for c in cands}) == [222, 402, 434]
    scores = [c["score"] for c in cands]
    assert scores == sorted(scores, reverse=True) and all(-4.0 <= s <= 0.0 for s in scores)
    assert result["teacher"] == "randomly initialised" and result["batch"] == 16
    assert all(c["latency_us"] > 0 for c in cands)
    assert "candidate" in res.output and "score" in res.output


def test_suggest_student_refuses_an_impossible_budget_and_a_build_without_teacher(tmp_path):
    from edgekd.cli import app

    cfg = _tiny_config(tmp_path)
    res = CliRunner().invoke(app, ["suggest-student", str(cfg), "--budget-params", "10", "--out", str(tmp_path / "a")])
    assert res.exit_code == 2 and "no cell_cnn variant fits" in " ".join(res.output.split())
    (tmp_path / "b").mkdir()
    res = CliRunner().invoke(app, ["suggest-student", str(cfg), "--build", str(tmp_path / "b"), "--budget-params", "700",
                                   "--out", str(tmp_path / "c")])
    assert res.exit_code == 2 and "no trained teacher" in " ".join(res.output.split())


def test_candidate_label_and_json():
    c = Candidate(StudentConfig(channels=[4, 8], kernel_sizes=[3, 3], weight_bits=6, act_bits=6), 123,
                  {"us": 1.5, "cycles": 375, "ii_cycles": 10, "resources": {"lut": 7, "dsp": 0}}, score=-0.5)
    d = c.to_dict()
    assert c.label == "conv 4-8 @6b" and d["params"] == 123 and d["latency_us"] == 1.5 and d["score"] == -0.5
