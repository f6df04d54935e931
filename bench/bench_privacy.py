"""The privacy gate's detectors against the hotel pack's PII sets: what leaks, what is
over-redacted, what it costs.

Every line goes through the gate as the cloud tier asks it for an out-of-scope request of the
hotel pack (``PrivacyGate(names=["Maria Santos"], room_number="412").check(text,
data_class="redact")``), with each of these detector sets:

* ``patterns (before)``: the hand-written patterns without the address pass
  (``redact(..., keep={"ADDRESS"})``);
* ``patterns``: the hand-written patterns, the address pass included;
* ``presidio``: Presidio's analyzer alone (spaCy ``en_core_web_md`` 3.8 and every default
  recogniser, every entity it reports, its own thresholds);
* ``before+presidio``: the union of the spans of the first and the third;
* ``patterns+presidio``: the union of the patterns and Presidio restricted to what the gate
  takes from it (people's names from spaCy's analysis: :func:`edgepipe.privacy.names.person_names`;
  e-mail, phone, card, IBAN, a few IDs; score >= 0.4), with ``en_core_web_md``: the gate's
  ``privacy.detector: patterns+presidio``;
* ``... (md, NER names only)``: the same without the name rules on context and lower case
  (``names_from_context=False, truecase=False``): the recogniser's ``PERSON`` entities alone;
* ``patterns+presidio (sm)`` and ``(sm, NER names only)``: the same two with spaCy's small
  model, ``en_core_web_sm`` (the gate's model before ``en_core_web_md``);
* ``patterns+presidio (1-word names)``: the chosen one, single-word names taken too.

Per file (``pii_utterances.jsonl``: the set the patterns were written against;
``pii_extra_utterances.jsonl``: development; ``pii_holdout_utterances.jsonl``: held out at
first, its leaks worked on since, so development now; ``pii_holdout2_utterances.jsonl``: written
blind and never tuned on): the share of PII strings that survive (the leak test of
``tests/privacy/test_pii_set.py``: the string, its digits or its letters-and-digits anywhere in
what leaves), the lines with any leak, the no-PII lines changed at all; and over the labelled
in-scope hotel requests (``utterances.jsonl``), the lines changed (one holds a name, listed in
:data:`REAL_PII_IN_SCOPE`: changing it is not over-redaction). Then time per check (median, p95, and
the ratio to the patterns: other work may run on the machine), and for each spaCy model
Presidio's load time and the memory it adds (each in a fresh process).

    python bench/bench_privacy.py [--json [PATH]] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import platform
import re
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Collection, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from edgepipe.eval.stats import percentile
from edgepipe.privacy.detect import Detector, PatternDetector, build_detectors, presidio_only
from edgepipe.privacy.gate import PrivacyGate
from edgepipe.privacy.presidio import MODELS, PresidioDetector, load_analyzer, shared_analyzer
from edgepipe.privacy.redact import Span, redact

ROOT = Path(__file__).resolve().parent.parent
TESTS = ROOT / "packs" / "hotel" / "tests"
FILES = {
    "pii (patterns' own set)": "pii_utterances.jsonl",
    "extra (dev)": "pii_extra_utterances.jsonl",
    "holdout": "pii_holdout_utterances.jsonl",
    "holdout2 (blind)": "pii_holdout2_utterances.jsonl",
}
IN_SCOPE = "utterances.jsonl"
GUEST, ROOM = "Maria Santos", "412"
REAL_PII_IN_SCOPE: frozenset[str] = frozenset({"send a text to John saying I'll be late"})
"""In-scope hotel lines whose redaction is not over-redaction (checked by hand: one name)."""


class PatternsBefore:
    """The hand-written patterns without the address pass (as before it was added)."""

    name = "patterns(before)"

    def find(
        self, text: str, *, names: Sequence[str] = (), keep: Collection[str] = ()
    ) -> list[Span]:
        return list(redact(text, names=names, keep={*keep, "ADDRESS"}).spans)


# ------------------------------------------------------------------------------ leak check
# (the same check as tests/privacy/test_pii_set.py)


def _compact(s: str) -> str:
    return re.sub(r"[^0-9a-z]", "", s.lower())


def _digit_runs(s: str) -> str:
    return re.sub(r"(?<=\d)[\s.()/+-]+(?=\d)", "", s)


def leaks(pii: str, out: str) -> bool:
    if len(pii) < 5:
        if re.search(rf"(?<![0-9A-Za-z]){re.escape(pii)}(?![0-9A-Za-z])", out, re.IGNORECASE):
            return True
    elif pii.lower() in out.lower():
        return True
    digits = re.sub(r"\D", "", pii)
    if len(digits) >= 6 and digits in re.sub(r"[^\d<>]", "", _digit_runs(out)):
        return True
    compact = _compact(pii)
    return any(c.isdigit() for c in pii) and len(compact) >= 6 and compact in _compact(out)


# ------------------------------------------------------------------------------ measuring


def load_jsonl(name: str) -> list[dict[str, Any]]:
    lines = (TESTS / name).read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def measure_load(model: str) -> dict[str, float]:
    """Load time and RSS added by Presidio over ``model``, in a fresh process."""
    out = subprocess.run(
        [sys.executable, __file__, "--load-only", model], capture_output=True, text=True, check=True
    ).stdout
    return dict(json.loads(out.strip().splitlines()[-1]))


def load_only(model: str) -> None:
    before = rss_mb()
    started = time.perf_counter()
    load_analyzer(model)
    load_s = time.perf_counter() - started
    print(json.dumps({"load_s": round(load_s, 2), "rss_added_mb": round(rss_mb() - before, 1)}))


def score_file(check: Callable[[str], str], rows: list[dict[str, Any]]) -> dict[str, Any]:
    pii_total = pii_leaked = lines_pii = lines_leaking = clean = clean_changed = 0
    examples: list[dict[str, Any]] = []
    for row in rows:
        out = check(row["text"])
        if row["pii"]:
            lines_pii += 1
            leaked = [p for p in row["pii"] if leaks(p, out)]
            pii_total += len(row["pii"])
            pii_leaked += len(leaked)
            if leaked:
                lines_leaking += 1
                examples.append({"text": row["text"], "leaked": leaked, "sent": out})
        else:
            clean += 1
            if out != row["text"]:
                clean_changed += 1
                examples.append({"text": row["text"], "over_redacted": out})
    return {
        "pii_strings": pii_total,
        "pii_leaked": pii_leaked,
        "leak_rate": round(pii_leaked / pii_total, 4) if pii_total else None,
        "pii_lines": lines_pii,
        "lines_with_leak": lines_leaking,
        "clean_lines": clean,
        "clean_lines_changed": clean_changed,
        "false_positive_rate": round(clean_changed / clean, 4) if clean else None,
        "problems": examples,
    }


def score_in_scope(check: Callable[[str], str], texts: list[str]) -> dict[str, Any]:
    changed = [
        {"text": t, "sent": out}
        for t in texts
        if (out := check(t)) != t and t not in REAL_PII_IN_SCOPE
    ]
    return {
        "lines": len(texts),
        "over_redacted": len(changed),
        "over_redaction_rate": round(len(changed) / len(texts), 4),
        "problems": changed,
    }


def time_checks(
    checks: dict[str, Callable[[str], str]], texts: list[str], rounds: int
) -> dict[str, dict[str, float]]:
    """Time per check for each variant, interleaved (every variant on a text, then the next
    text) so that other work on the machine weighs on all of them alike."""
    for check in checks.values():
        for text in texts[:20]:  # warm-up
            check(text)
    ms: dict[str, list[float]] = {label: [] for label in checks}
    for _ in range(rounds):
        for text in texts:
            for label, check in checks.items():
                started = time.perf_counter()
                check(text)
                ms[label].append((time.perf_counter() - started) * 1000)
    return {
        label: {
            "calls": len(v),
            "median_ms": round(statistics.median(v), 3),
            "p95_ms": round(percentile(v, 0.95), 3),
            "mean_ms": round(statistics.fmean(v), 3),
        }
        for label, v in ms.items()
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--json",
        nargs="?",
        type=Path,
        const=ROOT / "bench" / "results" / "privacy.json",
        help="write the results here (default bench/results/privacy.json)",
    )
    parser.add_argument("--rounds", type=int, default=3, help="timing rounds over every line")
    parser.add_argument("--problems", action="store_true", help="print every leak and change")
    parser.add_argument(
        "--no-holdout", action="store_true", help="leave the held-out file out (while tuning)"
    )
    parser.add_argument("--load-only", metavar="MODEL", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.load_only:
        load_only(args.load_only)
        return

    md, sm = MODELS
    loads = {model: measure_load(model) for model in MODELS}
    rss_before = rss_mb()
    started = time.perf_counter()
    everything = presidio_only()  # loads the analyzer (once per process)
    load_s = time.perf_counter() - started
    rss_after = rss_mb()
    chosen = build_detectors("patterns+presidio")
    analyzer, small = shared_analyzer(model=md), load_analyzer(sm)
    one_word = PresidioDetector(analyzer, min_name_words=1)

    def ner_only(analyzer: Any) -> PresidioDetector:
        return PresidioDetector(analyzer, names_from_context=False, truecase=False)

    variants: dict[str, Sequence[Detector]] = {
        "patterns (before)": [PatternsBefore()],
        "patterns": [PatternDetector()],
        "presidio": everything,
        "before+presidio": [PatternsBefore(), *everything],
        "patterns+presidio": chosen,
        "patterns+presidio (md, NER names only)": [PatternDetector(), ner_only(analyzer)],
        "patterns+presidio (sm)": [PatternDetector(), PresidioDetector(small)],
        "patterns+presidio (sm, NER names only)": [PatternDetector(), ner_only(small)],
        "patterns+presidio (1-word names)": [PatternDetector(), one_word],
    }
    files = {
        label: load_jsonl(name)
        for label, name in FILES.items()
        if not (args.no_holdout and label.startswith("holdout"))
    }
    in_scope = [row["text"] for row in load_jsonl(IN_SCOPE)]
    all_texts = [row["text"] for rows in files.values() for row in rows] + in_scope

    checks: dict[str, Callable[[str], str]] = {}
    for label, detectors in variants.items():
        gate = PrivacyGate(names=[GUEST], room_number=ROOM, detector=detectors)

        def check(text: str, gate: PrivacyGate = gate) -> str:
            egress = gate.check(text, data_class="redact")
            assert egress.allowed, egress.reason
            return egress.text

        checks[label] = check
    results: dict[str, Any] = {
        label: {
            "files": {name: score_file(check, rows) for name, rows in files.items()},
            "in_scope": score_in_scope(check, in_scope),
        }
        for label, check in checks.items()
    }
    for label, timing in time_checks(checks, all_texts, args.rounds).items():
        results[label]["timing"] = timing
    base = results["patterns"]["timing"]["median_ms"]
    for res in results.values():
        res["timing"]["median_vs_patterns"] = round(res["timing"]["median_ms"] / base, 1)

    report = {
        "when": datetime.now().isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {platform.python_version()}",
        "presidio_load_s": round(load_s, 2),
        "presidio_rss_added_mb": round(rss_after - rss_before, 1),
        "models": {model: loads[model] for model in MODELS},
        "rss_before_mb": round(rss_before, 1),
        "gate": f'PrivacyGate(names=["{GUEST}"], room_number="{ROOM}"), data_class redact',
        "variants": results,
    }
    print_table(report, show_problems=args.problems)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
        print(f"\nwritten: {args.json}")


def print_table(report: dict[str, Any], *, show_problems: bool) -> None:
    for model, load in report["models"].items():
        print(f"Presidio + {model}: load {load['load_s']} s, +{load['rss_added_mb']} MB RSS")
    for file in next(iter(report["variants"].values()))["files"]:
        print(f"\n== {file}")
        print(f"{'variant':40} {'leaked':>12} {'leak%':>6} {'lines leak':>11} {'clean chg':>10}")
        for label, res in report["variants"].items():
            f = res["files"][file]
            print(
                f"{label:40} {f['pii_leaked']:>5}/{f['pii_strings']:<6} "
                f"{100 * f['leak_rate']:>6.1f} {f['lines_with_leak']:>5}/{f['pii_lines']:<5} "
                f"{f['clean_lines_changed']:>4}/{f['clean_lines']:<5}"
            )
    print("\n== in-scope hotel requests (utterances.jsonl) and time per check")
    print(
        f"{'variant':40} {'over-redacted':>14} {'median ms':>10} {'p95 ms':>8} {'x patterns':>10}"
    )
    for label, res in report["variants"].items():
        s, t = res["in_scope"], res["timing"]
        print(
            f"{label:40} {s['over_redacted']:>6}/{s['lines']:<7} {t['median_ms']:>10.2f} "
            f"{t['p95_ms']:>8.2f} {t['median_vs_patterns']:>10.1f}"
        )
    if show_problems:
        for label, res in report["variants"].items():
            print(f"\n#### {label}")
            for file, f in res["files"].items():
                for p in f["problems"]:
                    print(f"  [{file}] {p}")
            for p in res["in_scope"]["problems"]:
                print(f"  [in-scope] {p}")


if __name__ == "__main__":
    main()
