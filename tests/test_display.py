"""Results show themselves: a plain ``repr`` (the table as text) and Jupyter's ``_repr_html_`` (issue 21 item 4)."""

from __future__ import annotations

import pipesim
from pipesim.placement.examples import chain, uniform_planning_chain
from pipesim.placement.plan import plan


def test_placement_result_shows_its_devices():
    r = pipesim.solve(chain((2.0, 1.0, 3.0)), method="dp")
    text = repr(r)
    assert text.startswith("dp: optimal, max-load 3")
    assert "accelerator[0]" in text and "load" in text
    html = r._repr_html_()
    assert "<table" in html and "accelerator[0]" in html and "max-load 3" in html


def test_html_escapes_user_text():
    r = pipesim.solve(chain((1.0,)), method="dp")
    r.message = "<script>x</script>"
    assert "<script>" not in r._repr_html_() and "&lt;script&gt;" in r._repr_html_()


def test_plan_shows_its_stages():
    p = plan(uniform_planning_chain(4))
    assert "stage" in repr(p) and p.status in repr(p)
    assert "<table" in p._repr_html_()


def test_simulation_result_inlines_a_gantt_chart():
    w = chain((1.0, 2.0))
    r = pipesim.solve(w, method="dp")
    s = pipesim.simulate(w, r.split, schedule="stream", microbatches=8)
    assert "predicted" in repr(s) and "simulated" in repr(s) and "data:image/png" not in repr(s)
    html = s._repr_html_()
    assert "data:image/png;base64," in html and "<table" in html


def test_comparison_shows_every_method():
    c = pipesim.compare(chain((1.0, 1.0)), ["dp", "single"])
    assert "dp" in repr(c) and "single" in repr(c)
    assert c._repr_html_().count("<tr>") == 3  # header + two methods
