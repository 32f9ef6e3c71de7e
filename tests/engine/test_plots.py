
"""Pictures of a run: no process-wide matplotlib state touched, class names in any script."""
from conftest import TINY_MODEL

from lstmimg import ModelConfig, TrainConfig, fit


def test_fit_leaves_the_matplotlib_backend_alone(bars, tmp_path):
    import matplotlib

    matplotlib.use("svg")
    try:
        fit(bars, ModelConfig(**TINY_MODEL), TrainConfig(epochs=1), out=tmp_path / "r")
        assert matplotlib.get_backend().lower() == "svg"
    finally:
        matplotlib.use("Agg")


def test_cjk_labels_use_an_installed_font_that_has_them_and_never_warn(tmp_path):
    import warnings

    from lstmimg.engine.plots import font_families, plot_confusion

    assert font_families(installed={"Noto Sans CJK JP", "Comic Neue"}) == ["DejaVu Sans", "Noto Sans CJK JP"]
    assert font_families(installed=set()) == ["DejaVu Sans"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a "Glyph missing from font" warning would fail here
        plot_confusion([[3, 1], [0, 4]], ["一 one", "seven 7"], tmp_path / "cm.png")
    assert (tmp_path / "cm.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
