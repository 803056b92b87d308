from __future__ import annotations

import io

from PIL import Image

from shipyard.demos.pneumonia import run_pneumonia_demo


def test_pneumonia_demo_trains_serves_three_x_rays_and_writes_saliency(tmp_path):
    # The demo's data, split and serving path with the linear baseline alone at 16 pixels, so
    # that the test stays fast; the full demo's figures are in docs/benchmarks.md.
    result = run_pneumonia_demo(
        {
            "registry.home": str(tmp_path / "home"),
            "image.candidates": ["linear_pixels"],
            "image.size": 16,
            "image.epochs": 2,
            "evaluation.bootstrap_samples": 100,
        },
        saliency_folder=tmp_path / "saliency",
    )
    auc = result.run.test_metrics["roc_auc"]
    assert auc.low <= auc.value <= auc.high
    assert auc.value > 0.8, f"test AUC {auc}"
    assert result.run.rows["test"] == 468
    assert [call["actual"] for call in result.calls] == ["normal", "normal", "pneumonia"]
    for call in result.calls:
        answer = call["answer"]
        assert set(answer["probabilities"]) == {"0", "1"}
        assert 0.0 < answer["threshold"] < 1.0
        with open(call["saliency"], "rb") as png:
            assert Image.open(io.BytesIO(png.read())).format == "PNG"
