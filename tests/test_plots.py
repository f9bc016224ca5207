"""The shared image / map / overlay helpers of saliency_lib.plots (the notebooks 01-03 section)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from saliency_lib import plots  # noqa: E402


@pytest.fixture
def ax():
    figure, axes = plt.subplots()
    yield axes
    plt.close(figure)


@pytest.mark.parametrize(
    "shape, expected",
    [((5, 6), (5, 6)), ((1, 5, 6), (5, 6)), ((1, 1, 5, 6), (5, 6)), ((3, 5, 6), (5, 6, 3)), ((1, 3, 5, 6), (5, 6, 3))],
)
def test_as_array_shapes(shape, expected):
    values = torch.arange(int(np.prod(shape)), dtype=torch.float32).reshape(shape)
    array = plots.as_array(values)
    assert array.shape == expected and array.dtype == np.float32
    if len(expected) == 3:  # channels moved last, values kept
        assert array[1, 2, 0] == values.reshape(3, 5, 6)[0, 1, 2]


@pytest.mark.parametrize("shape", [(2, 5, 6), (2, 2, 5, 6), (5,)])
def test_as_array_rejects_other_shapes(shape):
    with pytest.raises(ValueError, match="shape"):
        plots.as_array(torch.zeros(shape))


def test_show_image_grey_and_colour(ax):
    grey = plots.show_image(ax, torch.full((1, 4, 4), 0.5), "grey")
    assert grey.get_cmap().name == "gray" and grey.get_array().shape == (4, 4)
    assert ax.get_title() == "grey" and ax.get_xlabel() == "x (pixels)" and ax.get_ylabel() == "y (pixels)"
    colour = plots.show_image(ax, torch.rand(3, 4, 4) * 2)  # out-of-range values are clipped for display
    assert colour.get_array().shape == (4, 4, 3) and colour.get_array().max() <= 1


def test_show_map_has_a_colour_bar(ax):
    drawn = plots.show_map(ax, torch.rand(6, 6), "map", label="importance")
    assert len(ax.figure.axes) == 2  # the map and its colour bar
    assert ax.figure.axes[1].get_ylabel() == "importance"
    assert drawn.get_clim() == (0.0, 1.0)
    free = plots.show_map(ax, torch.full((6, 6), 3.0) + torch.eye(6), vmin=None, vmax=None, cbar=False)
    assert free.get_clim() == (3.0, 4.0) and len(ax.figure.axes) == 2


def test_show_grid_cells_and_annotations(ax):
    grid = torch.tensor([[1.0, 0.0, 0.98], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    plots.show_grid(ax, grid, annotate=True)
    lines = [c for c in ax.collections if c.get_gid() == "cell-lines"]
    assert len(lines) == 2 and sum(len(c.get_segments()) for c in lines) == 8  # 4 vertical + 4 horizontal
    assert sorted(t.get_text() for t in ax.texts) == sorted(["1", "0", "0.98", "0", "1", "0", "0", "0", "1"])
    assert ax.get_xlabel() == "cell column" and len(ax.figure.axes) == 2
    plots.draw_cell_lines(ax, 5)  # replaces the old borders
    lines = [c for c in ax.collections if c.get_gid() == "cell-lines"]
    assert sum(len(c.get_segments()) for c in lines) == 12


def test_overlay_keeps_the_image_visible(ax):
    image, values = torch.rand(1, 8, 8), torch.rand(8, 8)
    top = plots.overlay(ax, image, values, alpha=0.4, title="overlay")
    assert len(ax.images) == 2 and ax.images[0].get_cmap().name == "gray"
    assert top is ax.images[1] and top.get_alpha() == 0.4
    assert len(ax.figure.axes) == 2 and ax.get_title() == "overlay"
    with pytest.raises(ValueError, match="alpha"):
        plots.overlay(ax, image, values, alpha=1.5)


def test_cell_changes(ax):
    old = torch.tensor([[1.0, 1.0], [0.0, 0.0]])
    new = torch.tensor([[0.99, 0.0], [1.0, 0.0]])
    assert plots.cell_fates(old, new).tolist() == [[0, 1], [2, 3]]
    plots.show_cell_changes(ax, old, new)
    labels = [text.get_text() for text in ax.get_legend().get_texts()]
    assert labels == ["kept (1)", "dropped (1)", "turned on (1)", "stayed off (1)"]


def test_plot_update_rule(ax):
    markers = plots.plot_update_rule(ax, 0.7)
    keep, turn_on = ax.lines[:2]
    assert np.allclose(keep.get_ydata(), keep.get_xdata()) and np.allclose(turn_on.get_ydata(), 1 - turn_on.get_xdata())
    assert len(markers) == 1 and markers[0].get_xdata()[0] == pytest.approx(0.7)
    assert "p" in ax.get_xlabel() and ax.get_ylabel() == "probability"


def test_compare_maps():
    figure = plots.compare_maps(torch.rand(3, 10, 10), {"A": torch.rand(10, 10), "B": torch.rand(10, 10) * 5})
    titles = [ax.get_title() for ax in figure.axes]
    assert titles[:3] == ["image", "A", "B"] and len(figure.axes) == 5  # three panels and two colour bars
    assert figure.axes[2].images[1].get_clim()[1] == pytest.approx(float(figure.axes[2].images[1].get_array().max()))
    plt.close(figure)


def test_compare_maps_colours_each_map_from_its_own_minimum_to_its_maximum_and_says_so():
    # RISE's maps sit in a narrow band (every pixel near the mean score): from 0 they were one flat colour.
    rise_like = 0.8 + 0.1 * torch.rand(10, 10)
    oise_like = torch.rand(10, 10)
    figure = plots.compare_maps(torch.rand(3, 10, 10), {"OISE": oise_like, "RISE": rise_like}, title="t")
    for ax, values in zip(figure.axes[1:3], (oise_like, rise_like)):
        assert ax.images[1].get_clim() == pytest.approx((float(values.min()), float(values.max())))
    bars = [ax for ax in figure.axes if ax.get_ylabel().startswith("saliency")]
    assert len(bars) == 2 and all("own range" in ax.get_ylabel() for ax in bars)
    assert "own minimum" in figure.get_suptitle() and figure.get_suptitle().startswith("t\n")
    flat = plots.compare_maps(torch.rand(3, 10, 10), {"flat": torch.full((10, 10), 0.3)})
    low, high = flat.axes[1].images[1].get_clim()
    assert low < 0.3 < high
    plt.close("all")


@pytest.mark.parametrize(
    "value, text",
    [
        (0.25, ".250"),
        (0.9996, ".9996"),
        (0.0004, ".0004"),
        (0.5, ".500"),
        (1.0, "1"),
        (0.0, "0"),
        (0.99999999, ">.999999"),
        (1e-9, "<.000001"),
    ],
)
def test_cell_value_text_never_rounds_a_value_to_0_or_1(value, text):
    assert plots.cell_value_text(value) == text


def _extent(artist, figure):
    return artist.get_window_extent(figure.canvas.get_renderer())


def test_variation_titles_stay_clear_of_the_row_above():
    figure = plots.plot_variations(
        torch.rand(1, 28, 28), torch.rand(12, 1, 28, 28), [1] * 6 + [2] * 6, [f"class {k}" for k in range(10)], 1
    )
    figure.canvas.draw()
    axes = figure.axes
    for column in range(5):  # row 2's two-line titles end below row 1's images
        above, below = axes[column], axes[8 + column]
        assert _extent(below.title, figure).y1 <= _extent(above, figure).y0 + 0.5
    first_titles = max(_extent(ax.title, figure).y1 for ax in axes[:8])
    assert _extent(figure._suptitle, figure).y0 >= first_titles - 0.5
    plt.close(figure)


def test_agreement_legend_sits_outside_both_panels():
    summary = {"mean": 0.8, "ci95": [0.7, 0.85], "std": 0.1, "n": 20}
    result = {
        "fractions": [0.5, 0.9],
        "images": 20,
        "paper_lynx_theirs": {"0.5": 0.89, "0.9": 0.65},
        "conditions": {
            name: {"0.5": {"agreement": summary, "loss": 1.0}, "0.9": {"agreement": summary, "loss": 2.0}}
            for name in ("oise_generated", "rise_generated", "random_generated")
        },
    }
    figure = plots.plot_agreement_curves(result)
    figure.canvas.draw()
    assert len(figure.legends) == 1 and all(ax.get_legend() is None for ax in figure.axes)
    legend = _extent(figure.legends[0], figure)
    for ax in figure.axes:
        assert not legend.overlaps(_extent(ax, figure))
    assert len(figure.legends[0].get_texts()) == 4  # three conditions and the paper's stars
    plt.close(figure)


def test_agreement_curves_read_ci95_as_low_high():
    # reports.summarise stores ci95 = [low, high]; the error bars must run from low to high around the mean.
    summary = {"mean": 0.8, "ci95": [0.7, 0.85], "std": 0.1, "n": 20}
    result = {
        "fractions": [0.5, 0.9],
        "images": 20,
        "conditions": {
            "oise_generated": {"0.5": {"agreement": summary, "loss": 1.0}, "0.9": {"agreement": summary, "loss": 2.0}}
        },
    }
    figure = plots.plot_agreement_curves(result)
    segments = figure.axes[0].collections[0].get_segments()
    low, high = sorted(segments[0][:, 1])
    assert (low, high) == pytest.approx((70.0, 85.0))
    plt.close(figure)


def test_colour_range_is_the_one_scaling_of_every_map_figure():
    from saliency_lib.course.widgets.your_model_panel import map_scale
    from saliency_lib.plots import colour_range, scaled_map

    narrow = torch.tensor([[0.60, 0.62], [0.61, 0.64]])
    assert colour_range(narrow) == pytest.approx((0.60, 0.64))
    assert colour_range(torch.tensor([[-0.2, 0.5]]), signed=True) == (-0.5, 0.5)
    assert colour_range(torch.full((2, 2), 0.3)) == pytest.approx((-0.2, 0.8))  # flat: one colour, a unit range
    assert colour_range(torch.tensor([[float("nan"), 2.0, 4.0]])) == (2.0, 4.0)
    assert (map_scale("rise", narrow)["vmin"], map_scale("rise", narrow)["vmax"]) == colour_range(narrow)
    assert (map_scale("lime", narrow)["vmin"], map_scale("lime", narrow)["vmax"]) == colour_range(narrow, signed=True)
    assert scaled_map(narrow).min() == 0 and scaled_map(narrow).max() == pytest.approx(1)
    assert not scaled_map(torch.full((2, 2), 0.3)).any()
