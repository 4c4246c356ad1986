"""The HTML report in a real browser: headless Chromium (Debian's ``chromium``, installed by ``make
setup`` when run as root with apt) lays the page out at 1400 px and 420 px (a phone) and we measure
it: the verdict cards are inside the first 900 px, nothing is wider than the viewport (wide tables
scroll in their own box), no text of a figure is clipped, figure text stays legible, and the page
shows no NaN / None / Python repr. Skipped, with the reason, when Chromium is absent. Also: the
verdicts come before the first table, a target the model does not fit shows the refusal reason on
the first screen, and zero samples or an empty data folder is one error with no page written.
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest
from chromium import Browser, find_chromium
from test_report import T, tiny_data, tiny_net
from test_report_polish import _fake_verify

from qsnn_deploy.cli import report as report_cli
from qsnn_deploy.report import activity_from_result, compute_report, write_html
from qsnn_deploy.verify import Mismatch

REPO = Path(__file__).resolve().parents[1]
WIDTHS = (1400, 420)
#: what a Python value printed into the page looks like
PY_REPR = re.compile(r"\bNaN\b|\bnan\b|\bNone\b|\bTrue\b|\bFalse\b|\binf\b|Infinity|object at 0x|\{'|\['|array\(|"
                     r"np\.(int|float)|dtype=")
#: smallest font in a figure (pt, bar labels) and the least CSS px it may shrink to
SMALLEST_FIG_PT, MIN_TEXT_PX = 8.5, 6.5


@pytest.fixture(scope="module")
def pages(tmp_path_factory):
    """Four pages: the tiny net all bit-exact but not fitting Loihi 2; the tiny net with a backend that differs;
    the tiny net without data (static figures); and (with ../shared/data) the shipped Loihi-profile MNIST model
    on a few digits."""
    tmp = tmp_path_factory.mktemp("pages")
    net = tiny_net()
    x, y, res = tiny_data()
    act = activity_from_result(net, res, x, y, source="hand")
    out = {}
    ok = _fake_verify(["torch-model (cpu)", "torch-cpu", "onnx"])
    for b in ok.backends:   # every layer equal
        for layer in b.layers:
            layer.bit_exact, layer.mismatched_values, layer.spike_count_agreement = True, 0, 1.0
    out["tiny"] = write_html(compute_report(net, act, ok, model_name="tiny", target="lava"), tmp / "tiny.html")
    bad = _fake_verify(["torch-cpu", "onnx", "nir"])   # nir's fc differs
    bad.backends[2].layers[1].first_mismatch = Mismatch("fc", 1, 3, [2], 0, 1)
    out["mismatch"] = write_html(compute_report(net, act, bad, model_name="tiny"), tmp / "mismatch.html")
    out["static"] = write_html(compute_report(net, model_name="tiny"), tmp / "static.html")   # no data: 1 plot
    data = REPO.parent / "shared" / "data" / "mnist"
    if data.exists():
        page = tmp / "mnist.html"
        rc = report_cli.main([str(REPO / "examples" / "mnist_int4_loihi.pt"), "--data", str(data), "-n", "6", "--steps",
                              "8", "--target", "lava", "--verify-backends", "torch,loihi", "--html", str(page)])
        assert rc == 0
        out["mnist"] = page
    return out


def test_verdicts_come_before_the_first_table(pages):
    text = pages["tiny"].read_text()
    first_table = text.index("<table")
    assert text.index('id="verdicts"') < first_table
    for s in ("bit-exact", "does NOT fit stock Loihi 2", "per-channel threshold", "Latency", "Accuracy"):
        assert s in text[:first_table], s   # the refusal reason is on the first screen
    if "mnist" in pages:   # the Loihi-profile model: both verdicts pass
        text = pages["mnist"].read_text()
        head = text[:text.index("<table")]
        assert "bit-exact" in head and "fits stock Loihi 2" in head and "NOT" not in head
        low = text.lower()
        assert all(s in low for s in ("connection sparsity", "activation sparsity", "latency"))


def test_mismatch_names_the_first_difference(pages):
    text = pages["mismatch"].read_text()
    head = text[:text.index("<table")]
    assert "NOT bit-exact" in head and "first mismatch: NIR graph round trip, layer fc, sample 1, step 3, neuron (2,)" in head
    verify = text[text.index('id="verify"'):]
    assert "NOT bit-exact" in verify and "<details>" not in verify   # the table is open when something differs
    assert "first: sample 1, step 3, neuron (2,)" in verify and 'aria-label="spike-count agreement' in verify


def test_all_exact_agreement_is_one_line(pages):
    verify = pages["tiny"].read_text().split('id="verify"', 1)[1]
    assert "All 3 backends bit-exact on 2 samples × 4 steps" in verify and "<details>" in verify


@pytest.mark.skipif(find_chromium() is None, reason="Chromium not installed (make setup installs Debian's chromium "
                                                    "package when run as root with apt)")
def test_pages_in_headless_chromium(pages):
    with Browser() as browser:
        for name, page in pages.items():
            for width in WIDTHS:
                m = browser.measure(page, width)
                where = f"{name} at {width} px"
                assert m["vw"] == width, where
                assert m["verdictsBottom"] <= 900, f"{where}: verdict cards end at {m['verdictsBottom']:.0f} px"
                assert m["firstTableTop"] > m["verdictsBottom"], where
                assert m["docWidth"] <= width and not m["wide"], f"{where}: wider than the viewport: {m['wide']}"
                assert m["figures"] >= 1 and m["figureTexts"] > 10, where
                assert not m["clipped"], f"{where}: figure text clipped: {m['clipped']}"
                assert SMALLEST_FIG_PT * m["minFigureScale"] >= MIN_TEXT_PX, \
                    f"{where}: figure text shrinks to {SMALLEST_FIG_PT * m['minFigureScale']:.1f} px"
                bad = PY_REPR.findall(m["text"])
                assert not bad, f"{where}: {bad[:5]}"
                assert m["scrollBoxes"] >= 1, where


def test_zero_samples_or_empty_data_is_one_error_and_no_page(tmp_path, capsys):
    path = tiny_net().save(tmp_path / "tiny.qsnn")
    page = tmp_path / "r.html"
    assert report_cli.main([str(path), "--random", "-n", "0", "--html", str(page)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "at least 1 sample" in err and err.count("\n") == 1, err
    empty = tmp_path / "empty"
    empty.mkdir()
    ckpt = REPO / "examples" / "mnist_int4_loihi.pt"
    assert report_cli.main([str(ckpt), "--data", str(empty), "-n", "5", "--html", str(page)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "holds no MNIST-style idx files" in err and err.count("\n") == 1, err
    assert not page.exists() and not list(tmp_path.glob("*.tmp*"))
