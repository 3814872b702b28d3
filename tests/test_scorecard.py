"""The HTML scorecard: content, escaping of untrusted text, optional blocks, bad files, CLI."""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest
from fixtures_results import CATEGORIES, make_results, mention_for

from hessgpt.errors import HessError
from reports.render import (
    build_scorecard_context,
    category_label,
    format_ci,
    format_duration,
    format_number,
    format_percent,
    get_environment,
    grade_ring,
    load_results,
    percent_bar,
    render_scorecard,
    render_template,
    validate_results,
)

REPO = Path(__file__).resolve().parent.parent

PAYLOADS = [
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    '" onmouseover="alert(1)',
    "</pre></details><script>alert(2)</script>",
]


class _TagCollector(HTMLParser):
    """Every start tag and its attributes, as a browser's tokenizer would see them."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, list[tuple[str, str | None]]]] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, attrs))


def _tags(html: str) -> list[tuple[str, list[tuple[str, str | None]]]]:
    parser = _TagCollector()
    parser.feed(html)
    return parser.tags


def _render(tmp_path: Path, results: dict) -> str:
    path = render_scorecard(results, tmp_path / "run")
    assert path == tmp_path / "run" / "index.html"
    return path.read_text(encoding="utf-8")


# --- content -----------------------------------------------------------------------------


def test_scorecard_shows_grade_mention_criteria_categories_and_items(tmp_path):
    results = make_results(seed=1)
    html = _render(tmp_path, results)

    assert f"{results['grade']:.1f}" in html
    assert format_ci(results["grade_ci"]) in html
    assert f'class="badge mention-{results["mention"].lower().replace(" ", "-")}"' in html
    for crit in results["criteria"]:
        assert crit["label"] in html
        assert f"{crit['points']:.1f}" in html
    for name, cat in results["categories"].items():
        assert f'id="cat-{name.replace("_", "-")}"' in html
        assert category_label(name) in html
        assert f"{cat['score']:.1f}" in html
        assert cat["suite_hash"] in html  # suite hashes printed in full
    for item in results["items"]:
        assert f'id="item-{item["id"]}-s0"' in html  # every answer has a drill-down entry
    assert results["meta"]["checkpoint_sha256"] in html
    assert "29,615" in html  # training step, with separators
    assert "5 min 12 s" in html  # wall time


def test_a_self_contained_page_without_scripts_or_external_resources(tmp_path):
    html = _render(tmp_path, make_results())
    tags = _tags(html)
    assert not [t for t, _ in tags if t in ("script", "link", "iframe", "object", "embed")]
    urls = [v for _, attrs in tags for k, v in attrs if k in ("src", "href") and v]
    assert urls and all(u.startswith("#") for u in urls)  # internal anchors only
    assert "@import" not in html and "url(" not in html


def test_best_and_worst_answers_per_category_in_score_order():
    results = make_results(suites=["factual"], n_per_category=7)
    scores = [0.10, 0.90, 0.50, 0.70, 0.30, 0.95, 0.60]
    for item, score in zip(results["items"], scores, strict=True):
        item["score"] = score
    (factual,) = build_scorecard_context(results)["categories"]
    assert [it["id"] for it in factual["best"]] == ["factual-006", "factual-002", "factual-004"]
    assert [it["id"] for it in factual["worst"]] == ["factual-001", "factual-005", "factual-003"]


def test_best_and_worst_never_repeat_an_answer_when_few_items():
    results = make_results(suites=["creativity"], n_per_category=4)
    (cat,) = build_scorecard_context(results)["categories"]
    best = [it["id"] for it in cat["best"]]
    worst = [it["id"] for it in cat["worst"]]
    assert len(best) == 2 and len(worst) == 2 and not set(best) & set(worst)


def test_conversation_choices_checks_and_likelihood_in_drill_down(tmp_path):
    results = make_results()
    html = _render(tmp_path, results)
    conv = next(it for it in results["items"] if it["id"] == "conversation-001")
    assert len(conv["messages"]) == 3
    assert "Hello Ana! How can I help you today?" in html  # the assistant turn of the history
    fact = next(it for it in results["items"] if it["id"] == "factual-001")
    lik = fact["likelihood"]
    ppl = math.exp(-lik["reference_logprob"] / lik["reference_tokens"])
    assert f"{lik['reference_logprob']:.3f}" in html
    assert f"{ppl:.2f}" in html
    for check in fact["checks"]:
        assert check["explanation"] in html
    assert "Marseille" in html  # multiple-choice options
    assert f"{results['likelihood']['perplexity']:.2f}" in html


# --- escaping ----------------------------------------------------------------------------


def _hostile_results() -> dict:
    """Every free-text field of a results file carries an HTML/script payload."""
    payload = " ".join(PAYLOADS)
    results = make_results(outputs={"factual-001": payload, "creativity-002": "<script>alert(1)</script>"})
    item = results["items"][0]
    item["prompt"] = payload
    item["messages"] = [{"role": payload, "content": payload}, {"role": "user", "content": payload}]
    item["input"] = payload
    item["references"] = [payload]
    item["tags"] = [payload]
    item["choices"] = [payload, "b"]
    item["finish_reason"] = payload
    item["checks"][0]["type"] = payload
    item["checks"][0]["explanation"] = payload
    item["likelihood"] = {"extra": payload}
    results["robustness"]["findings"] = [payload]
    results["mention"] = payload
    results["criteria"][0]["label"] = payload
    results["meta"]["checkpoint"] = payload
    results["meta"]["model"]["name"] = payload
    results["meta"]["training"]["note"] = payload
    results["meta"]["settings"][payload] = payload
    results["meta"]["versions"][payload] = payload
    results["meta"]["started"] = payload
    results["meta"]["extra"] = payload
    return results


def test_model_output_and_suite_text_are_escaped(tmp_path):
    html = _render(tmp_path, _hostile_results())
    tags = _tags(html)
    assert "script" not in {t for t, _ in tags}
    assert "img" not in {t for t, _ in tags}
    event_handlers = [(t, k) for t, attrs in tags for k, _ in attrs if k.startswith("on")]
    assert event_handlers == []
    assert "<script" not in html.lower()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html
    assert "&#34; onmouseover=&#34;alert(1)" in html
    # the mention only reaches a class attribute through the slug filter
    badge_classes = [
        dict(a)["class"] for t, a in tags if t == "span" and "badge" in (dict(a).get("class") or "")
    ]
    assert badge_classes and all(re.fullmatch(r"badge mention-[a-z0-9-]+", c) for c in badge_classes)


def test_shared_environment_autoescapes_templates_that_extend_base():
    page = get_environment().from_string(
        '{% extends "base.html" %}{% block content %}<p>{{ answer }}</p>{{ 0.5|pct_bar(1) }}{% endblock %}'
    )
    html = page.render(answer="<script>alert(1)</script>")
    assert "<p>&lt;script&gt;alert(1)&lt;/script&gt;</p>" in html
    assert '<span class="bar-fill" style="width:50.00%">' in html  # filter markup is not escaped
    assert ".badge" in html  # the shared stylesheet is inlined


def test_render_template_writes_parent_folders(tmp_path):
    out = render_template("base.html", tmp_path / "a" / "b" / "page.html", generated_at="2026-01-01")
    text = out.read_text(encoding="utf-8")
    assert text.startswith("<!DOCTYPE html>") and "on 2026-01-01" in text


# --- optional blocks ---------------------------------------------------------------------


def test_responses_run_without_likelihood(tmp_path):
    results = make_results(with_likelihood=False)
    assert results["likelihood"] is None
    html = _render(tmp_path, results)
    assert "No likelihood metrics" in html
    assert "runs/responses.jsonl" in html
    assert "Perplexity" not in html.split('id="likelihood"')[1].split("</section>")[0]


def test_the_scorecard_states_how_far_to_trust_the_grade(tmp_path):
    results = make_results()
    results["meta"]["grader_agreement"] = {
        "split": "heldout", "n_answers": 337, "n_items": 56, "spearman": {"value": 0.8191, "ci": [0.78, 0.86]},
        "mae": {"value": 0.1283, "ci": [0.11, 0.15]}, "categories": {}, "levels": {}}
    html = _render(tmp_path, results)
    note = " ".join(html.split('class="small muted trust-note">')[1].split("</p>")[0].split())
    assert "on 337 answers labelled by careful humans (heldout split" in note
    assert "Spearman <strong>0.82</strong> [0.78, 0.86]" in note and "mean absolute error 0.13" in note
    del results["meta"]["grader_agreement"]
    assert "trust-note" not in _render(tmp_path, results)


def test_partial_run_marks_criteria_not_run(tmp_path):
    results = make_results(suites=["factual", "creativity"])
    assert results["partial"] is True
    ran = {c["key"] for c in results["criteria"] if c["points"] is not None}
    assert ran == {"factual_precision", "creativity"}
    html = _render(tmp_path, results)
    assert "only 10 of the 20 points were graded" in html
    assert html.count('<tr class="not-run">') == 3
    assert html.count(">Not run</span>") == 3
    assert 'id="cat-conversation"' not in html


def test_minimal_results_without_optional_blocks_render(tmp_path):
    results = make_results(suites=["robustness"], n_per_category=2)
    for key in ("likelihood", "robustness", "partial"):
        del results[key]
    results["meta"] = {}
    for item in results["items"]:
        for key in ("messages", "references", "likelihood", "new_tokens", "finish_reason", "input", "sample"):
            item.pop(key, None)
    html = _render(tmp_path, results)
    assert "No suite hashes recorded." in html
    assert "No suite-level robustness statistics" in html
    assert "robustness-002" in html


def test_missing_items_are_listed(tmp_path):
    results = make_results(missing={"factual": 2})
    assert results["categories"]["factual"]["n_missing"] == 2
    html = _render(tmp_path, results)
    assert "2 missing" in html
    assert html.count('<span class="tag bad">missing</span>') == 2
    assert "No answer was recorded for this item" in html


def test_several_samples_per_item_each_get_an_entry(tmp_path):
    results = make_results(suites=["creativity"], n_per_category=2, samples=3)
    html = _render(tmp_path, results)
    for sample in range(3):
        assert f'id="item-creativity-001-s{sample}"' in html
    assert "<strong>6</strong> answers" in html


# --- the fixture follows the scoring rules ---------------------------------------------


def test_fixture_numbers_follow_the_scoring_rules():
    results = make_results(seed=4, samples=2, missing={"input_tasks": 1})
    for item in results["items"]:
        if item["missing"]:
            assert item["score"] == 0 and item["output"] is None
            continue
        total = sum(c["weight"] for c in item["checks"])
        weighted = sum(c["weight"] * c["score"] for c in item["checks"]) / total
        assert weighted == pytest.approx(item["score"], abs=1e-3)
    for name, cat in results["categories"].items():
        per_item: dict[str, list[float]] = {}
        for item in results["items"]:
            if item["category"] == name:
                per_item.setdefault(item["id"], []).append(item["score"])
        means = [sum(s) / len(s) for s in per_item.values()]
        assert cat["score"] == pytest.approx(100 * sum(means) / len(means), abs=0.01)
        assert cat["ci"][0] <= cat["score"] <= cat["ci"][1]
    assert results["grade"] == pytest.approx(sum(c["points"] for c in results["criteria"]), abs=0.02)
    assert results["mention"] == mention_for(results["grade"])
    assert set(results["categories"]) == set(CATEGORIES)


def test_fixture_pins_category_scores_and_deep_merges_overrides():
    results = make_results(
        category_scores={"factual": 80.0, "explanations": 60.0}, meta={"seed": 9}, likelihood=None
    )
    assert results["categories"]["factual"]["score"] == 80.0
    factual_items = [it["score"] for it in results["items"] if it["category"] == "factual"]
    assert sum(factual_items) / len(factual_items) == pytest.approx(0.80, abs=1e-3)
    assert results["criteria"][0]["points"] == pytest.approx(8 * 0.70)
    assert results["meta"]["seed"] == 9 and results["meta"]["checkpoint"]  # merged, not replaced
    assert results["likelihood"] is None


# --- filters -------------------------------------------------------------------------------


def test_filters_format_numbers_intervals_and_bars():
    assert format_number(13.333) == "13.3"
    assert format_number(134515008) == "134,515,008"
    assert format_number(None) == "—" and format_number(float("nan")) == "—"
    assert format_ci([12.14, 14.36]) == "12.1 – 14.4"
    assert format_ci(None) == ""
    assert format_percent(0.416) == "42%"
    assert format_duration(312.5) == "5 min 12 s"
    bar = str(percent_bar(6, 8, [5, 7]))
    assert 'style="width:75.00%"' in bar
    assert 'style="left:62.50%;width:25.00%"' in bar
    assert "band-good" in bar  # 75% of the maximum
    empty = str(percent_bar(None, 8))
    assert "bar-fill" not in empty and "band-none" in empty
    assert 'aria-label="&lt;b&gt;"' in str(percent_bar(1, 2, label="<b>"))
    ring = str(grade_ring(10, 20, "Très bien"))
    assert 'class="ring ring-tres-bien"' in ring
    assert f'stroke-dasharray="{math.pi * 52:.2f} {2 * math.pi * 52:.2f}"' in ring


# --- bad files -----------------------------------------------------------------------------


def _write(tmp_path: Path, data) -> Path:
    path = tmp_path / "results.json"
    path.write_text(json.dumps(data) if not isinstance(data, str) else data, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda r: r.pop("grade"), "'grade' is missing"),
        (lambda r: r.update(schema_version=0), "'schema_version' is 0"),
        (lambda r: r.pop("schema_version"), "'schema_version' is missing"),
        (lambda r: r["items"][2].update(score="high"), "'items[2].score' must be a number or null"),
        (lambda r: r["items"][1].pop("id"), "'items[1].id' is missing"),
        (lambda r: r["criteria"][3].update(max=None), "'criteria[3].max' must be a number"),
        (lambda r: r["categories"]["factual"].pop("n_items"), "'categories.factual.n_items' is missing"),
        (lambda r: r.update(grade_ci=[1]), "'grade_ci' must be [low, high]"),
        (
            lambda r: r["items"][0]["checks"][1].update(score=True),
            "'items[0].checks[1].score' must be a number",
        ),
        (lambda r: r.update(likelihood=[]), "'likelihood' must be an object or null"),
        (lambda r: r["meta"].update(training="epoch 6"), "'meta.training' must be an object or null"),
    ],
)
def test_bad_results_file_names_the_file_and_field(tmp_path, mutate, field):
    results = make_results(n_per_category=3)
    mutate(results)
    path = _write(tmp_path, results)
    with pytest.raises(HessError) as err:
        load_results(path)
    message = str(err.value)
    assert message.startswith(f"{path}: field ")
    assert field in message
    assert "\n" not in message


def test_unreadable_results_give_one_line_errors(tmp_path):
    with pytest.raises(HessError, match=r"not valid JSON \(Expecting value at line 1, column 1\)"):
        load_results(_write(tmp_path, "not json"))
    with pytest.raises(HessError, match="expected a JSON object at the top level"):
        load_results(_write(tmp_path, [1, 2]))
    with pytest.raises(HessError, match="file not found"):
        load_results(tmp_path / "nowhere" / "results.json")
    with pytest.raises(HessError, match=r"^results\.json: field 'mention'"):
        validate_results({**make_results(n_per_category=1), "mention": 3})


def test_load_results_accepts_a_run_directory(tmp_path):
    results = make_results(n_per_category=2)
    _write(tmp_path, results)
    assert load_results(tmp_path) == results


# --- re-render a saved run -------------------------------------------------------------


def _run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "reports.render", *args], cwd=REPO, capture_output=True, text=True, timeout=60
    )


def test_cli_rerenders_a_saved_run_from_results_json(tmp_path):
    results = make_results(seed=2, n_per_category=3)
    _write(tmp_path, results)
    proc = _run_cli(str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    index = tmp_path / "index.html"
    assert proc.stdout.strip() == str(index)
    html = index.read_text(encoding="utf-8")
    assert f"{results['grade']:.1f}" in html and results["mention"] in html

    out = tmp_path / "elsewhere" / "card.html"
    proc = _run_cli(str(tmp_path / "results.json"), "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    assert out.read_text(encoding="utf-8").count('<details class="item"') == 21


def test_cli_reports_a_bad_file_in_one_line_with_exit_code_2(tmp_path):
    results = make_results(n_per_category=1)
    results["schema_version"] = 2
    path = _write(tmp_path, results)
    proc = _run_cli(str(tmp_path))
    assert proc.returncode == 2
    assert proc.stderr.startswith(f"error: {path}: field 'schema_version' is 2")
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    assert not (tmp_path / "index.html").exists()


def test_strongest_and_weakest_categories_in_the_summary():
    scores = {"conversation": 61.7, "factual": 80.8, "instructions": 62.0, "explanations": 95.6}
    scores |= {"creativity": 97.0, "input_tasks": 65.5, "robustness": 90.0}
    context = build_scorecard_context(make_results(category_scores=scores))
    assert [c["name"] for c in context["strongest"]] == ["creativity", "explanations"]
    assert [c["name"] for c in context["weakest"]] == ["conversation", "instructions"]


def test_limited_reused_and_partial_runs_say_so_in_the_terminal_and_on_the_scorecard(tmp_path):
    from benchmarks.runner import summary_table

    results = make_results(suites=["robustness", "instructions"], n_per_category=3)
    results["meta"]["settings"]["limit"] = 3
    results["meta"]["selection"] = {"limit": 3, "seed": 0, "n_selected": 6, "n_available": 125}
    results["meta"]["reused_answers"] = 4
    table = summary_table(results)
    first = table.splitlines()[0]
    assert first.startswith(f"Grade: {results['grade']:.1f}/20 (partial, limited run: see below)")
    assert "Partial run: only instructions, robustness (5 of the 20 points)" in table
    assert "Limited run (--limit 3 --seed 0): 6 of 125 items (5%), a seeded sample stratified by tag" in table
    assert "compare it only with runs of the same --limit and --seed" in table
    assert "Reused answers: 4 of 6 answers come from an earlier run" in table
    html = _render(tmp_path, results)
    assert "Limited run (--limit 3 --seed 0)" in html and "Reused answers: 4 of 6" in html
    # A full, fresh run says nothing of the kind.
    plain = summary_table(make_results(n_per_category=3))
    assert "run: see below" not in plain and "Limited" not in plain and "Reused" not in plain
