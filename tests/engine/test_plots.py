
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

    from lstmimg.engine.review.plots import font_families, plot_confusion

    assert font_families(installed={"Noto Sans CJK JP", "Comic Neue"}) == ["DejaVu Sans", "Noto Sans CJK JP"]
    assert font_families(installed=set()) == ["DejaVu Sans"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a "Glyph missing from font" warning would fail here
        plot_confusion([[3, 1], [0, 4]], ["一 one", "seven 7"], tmp_path / "cm.png")
    assert (tmp_path / "cm.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def _texts(ax) -> set[str]:
    return {t.get_text() for t in ax.texts}


def test_curves_show_every_epoch_and_keep_the_legend_off_the_curves():
    from lstmimg.engine.review.plots import curves_figure

    rows = [{"epoch": e, "train_loss": 1 / e, "val_loss": 1.2 / e, "train_acc": a, "val_acc": v}
            for e, a, v in ((1, 0.645, 0.70), (2, 0.9, 0.92), (3, 0.99, 1.0))]
    ax_loss, ax_acc = curves_figure(rows).axes
    assert ax_acc.get_ylim()[0] < 0.645 and ax_acc.get_ylim()[1] > 1.0  # the first epoch is on the chart
    assert ax_acc.get_legend()._loc == 4  # "lower right": accuracy ends near 1.0, top right


def test_the_image_explanation_names_the_file_and_labels_and_numbers_the_steps():
    import torch

    from lstmimg.engine.review.plots import image_explanation_figure

    importance = [0.01] * 24
    importance[16], importance[17], importance[15] = 0.5, 0.4, 0.3  # steps 17, 18, 16 decided most
    result = {"path": "data/val/7/3504.png", "true": "7", "label": "7", "prob": 0.873, "target": "7",
              "heatmap": [[0.0] * 24 for _ in range(24)],
              "steps": [{"step": i + 1, "box": [i, 0, i + 1, 24], "importance": d} for i, d in enumerate(importance)],
              "anytime": [{"steps": k + 1, "prob": k / 24} for k in range(24)]}
    fig = image_explanation_figure(torch.rand(1, 24, 24), result, "rows")
    assert fig._suptitle.get_text() == "3504.png: true 7, predicted 7 0.87"
    assert len(fig.axes) == 5  # the three panels and a colour scale for the heat map and for the steps
    assert {"drop of p(7) when covered", "step importance (drop when covered)"} <= {ax.get_ylabel() for ax in fig.axes}
    steps = fig.axes[1]
    assert {"1", "16", "17", "18", "24"} <= _texts(steps)  # the terminal's "steps 17, 18, 16 of 24" can be found
    assert sum(1 for t in steps.texts if t.get_text() == "" and hasattr(t, "arrow_patch")) >= 10  # the scan's direction
    unknown = image_explanation_figure(torch.rand(1, 24, 24), {**result, "true": None, "target": "1"}, "rows")
    assert unknown._suptitle.get_text() == "3504.png: true label unknown, predicted 7 0.87; explaining 1"


def test_the_video_explanation_says_sampled_and_source_frames_and_seconds():
    import torch

    from lstmimg.engine.review.plots import video_explanation_figure

    frames = [{"index": 3 * i, "time": round(3 * i / 30, 3), "importance": 0.1, "prob": 0.5} for i in range(8)]
    result = {"path": "clips/up/a.mp4", "true": "up", "label": "up", "prob": 0.9, "target": "up", "frames": frames,
              "probs": [[0.5, 0.5]] * 8}
    fig = video_explanation_figure(torch.rand(8, 3, 16, 16), result, ["down", "up"])
    titles = [ax.get_title() for ax in fig.axes]
    assert "#3 (src 6)\n0.20 s" in titles  # the 3rd sampled frame is source frame 6, 0.2 s in
    assert any("every 3 source frames" in ax.get_xlabel() for ax in fig.axes)
    seconds = [child for ax in fig.axes for child in ax.child_axes]
    assert seconds and seconds[0].get_xlabel() == "seconds into the video"
    assert abs(seconds[0]._functions[0](3) - 0.2) < 1e-9  # sampled frame 3 sits at 0.2 s on the seconds axis
    assert fig._suptitle.get_text() == "a.mp4: true up, predicted up 0.90"


def test_no_class_line_hides_another_in_the_timeline():
    from lstmimg.engine.review.plots import timeline_figure

    windows = [{"start": i, "end": i + 1, "probs": [0.0, 0.0, 1.0]} for i in range(5)]  # two classes on the same line at 0
    result = {"path": "v.mp4", "label": "c", "prob": 1.0, "windows": windows, "segments": [{"start": 0, "end": 5, "label": "c"}]}
    lines = timeline_figure(result, ["a", "b", "c"]).axes[0].get_lines()
    looks = [(line.get_color(), line.get_linestyle(), line.get_linewidth()) for line in lines]
    assert len(set(looks)) == 3 and len({style for _, style, _ in looks}) == 3
    assert lines[0].get_linewidth() > lines[1].get_linewidth()  # the one beneath is wider: its edges show
