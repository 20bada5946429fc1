"""The benchmark charts, drawn from a small hand-made ``bench.json`` dictionary: every stage
readable, memory ticks at the measured lengths in whole minutes, fp32 not hidden under fp16."""

from __future__ import annotations

import pytest

pytest.importorskip("matplotlib")

from milmer.benchmarks import charts  # noqa: E402

RESULT = {
    "summary": {
        "per_window_stages_ms": {
            "fp32": {"eeg_ica": 8.0, "crop": 0.4, "normalise": 0.2, "backbone": 470.0, "fusion": 12.0},
            "fp16": {"eeg_ica": 8.0, "crop": 0.4, "normalise": 0.2, "backbone": 470.0, "fusion": 12.0},
        },
        "floor_ms_per_window": 261.0,
    },
    "throughput": {
        p: {"rows": [{"batch": 1, "bags_per_s": 2.0}, {"batch": 2, "bags_per_s": 2.1}]} for p in ("fp16", "fp32")
    },
    # fp16 and fp32 use the same memory here: both lines must stay visible.
    "endtoend": [
        {"precision": p, "recording_s": s, "peak_rss_mb": 2000.0} for p in ("fp16", "fp32") for s in (60, 600)
    ],
    "settings": {"pipeline_batch": 2},
}


@pytest.fixture
def figures(monkeypatch):
    """Each chart's figure, kept open instead of saved."""
    drawn = []
    monkeypatch.setattr(charts, "_save", lambda fig, path: drawn.append(fig) or path)
    yield drawn
    import matplotlib.pyplot as plt

    plt.close("all")


def test_stage_chart_shows_small_stages_on_a_log_axis(figures, tmp_path):
    charts.stage_chart(RESULT, tmp_path / "s.png")
    stacked, alone = figures[0].axes
    assert alone.get_xscale() == "log" and stacked.get_xscale() == "linear"
    assert [t.get_text() for t in alone.get_yticklabels()] == ["eeg_ica", "crop", "normalise", "backbone", "fusion"]
    widths = sorted(round(p.get_width(), 3) for p in alone.patches)
    assert widths[:2] == [0.2, 0.2]  # normalise (0.2 ms) is a bar of its own, for both precisions
    assert [t.get_text() for t in stacked.get_legend().get_texts()][:2] == ["compute floor", "eeg_ica"]
    assert [t.get_text() for t in alone.get_legend().get_texts()] == ["fp32", "fp16"]
    assert alone.get_legend().get_texts()[0].get_fontsize() >= 9


def test_memory_ticks_are_the_lengths_in_whole_minutes(figures, tmp_path):
    charts.memory_chart(RESULT, tmp_path / "m.png")
    ax = figures[0].axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["1 min", "10 min"]
    assert list(ax.get_xticks()) == [60, 600]
    assert charts.length_label(12) == "12 s" and charts.length_label(90) == "90 s"


@pytest.mark.parametrize("chart", ["memory_chart", "throughput_chart"])
def test_fp32_is_drawn_over_fp16_and_differs_in_style(figures, tmp_path, chart):
    getattr(charts, chart)(RESULT, tmp_path / "c.png")
    lines = {line.get_label(): line for line in figures[0].axes[0].get_lines()}
    fp32, fp16 = lines["fp32"], lines["fp16"]
    assert fp32.get_zorder() > fp16.get_zorder()
    assert (fp32.get_marker(), fp32.get_linestyle()) != (fp16.get_marker(), fp16.get_linestyle())
    assert fp32.get_markerfacecolor() == "none"  # hollow: the fp16 marker shows through
    assert fp32.get_markersize() > fp16.get_markersize()


def test_every_title_says_tiny_and_not_quiet(figures, tmp_path):
    """A --tiny run on a busy machine: each chart's title says so; a quiet full-size run adds nothing."""
    tiny = {**RESULT, "model": {"tiny": True}, "load": {"before": {"quiet": False}}}
    for draw in (charts.stage_chart, charts.throughput_chart, charts.memory_chart):
        draw(tiny, tmp_path / "c.png")
    titles = [ax.get_title() for fig in figures for ax in fig.axes if ax.get_title()]
    assert len(titles) == 4 and all(t.endswith(" [TINY model, not quiet]") for t in titles), titles
    figures.clear()
    charts.stage_chart({**RESULT, "model": {"tiny": False}, "load": {"before": {"quiet": True}}}, tmp_path / "c.png")
    assert [ax.get_title() for ax in figures[0].axes] == ["Per-stage latency", "Each stage alone"]
