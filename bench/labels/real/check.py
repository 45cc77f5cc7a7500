"""Check the hand-written labels in this folder against the real corpus.

Plain Python (PyYAML only). Usage:

    python bench/labels/real/check.py [--corpus PATH]

The corpus defaults to ../../../../shared/corpus relative to this file.
Exits non-zero when a label is wrong; prints messages per split, kind and language.

What it checks:
- every file parses with yaml.safe_load and has a `facts:` list;
- ids are unique and carry the prefix of their file (sd-, tc-, tour-, none-);
- split, kind, hotel, lang take known values; every fact has 5+ questions; no question repeats;
- `unit` is given for unit and cross_unit facts and is an accommodation slug of that hotel;
- `source` exists and, for answerable kinds, is visible to the asking guest
  (their hotel's public files, the tourism files, and the manuals of their own unit);
- every `expect` string occurs in the folded text of `source`;
- every `forbid` string occurs in no file visible to the asking guest, and, for cross_* facts,
  does occur in `source` (it is the private value being protected);
- cross_unit: source is a manual of another unit of the same hotel;
  cross_tenant: source belongs to the other hotel;
- `pair` points to an existing id in the same split, and the partner points back.

Folding: lowercase, accents removed, whitespace runs collapsed to one space. Forbid checks also
compare with all whitespace removed (stricter: "+57 300" and "+57300" count as the same).
"""

from __future__ import annotations

import argparse
import re
import sys
import unicodedata
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).resolve().parent
FILES = {
    "simmerdown.yaml": ("sd-",),
    "tucasamar.yaml": ("tc-",),
    "tourism.yaml": ("tour-",),
    "unanswerable.yaml": ("none-",),
}
Fact = dict[str, Any]
HOTELS = {"simmerdown": "simmerdown", "tucasamar": "tucasamar"}  # hotel -> corpus folder
TOURISM_DIR = "muva-tourism"
SPLITS = ("tune", "test")
KINDS = ("hotel", "unit", "tourism", "unanswerable", "cross_unit", "cross_tenant")
LANGS = ("es", "en", "pt", "fr")
ANSWERABLE = ("hotel", "unit", "tourism")
MIN_QUESTIONS = 5


def fold(text: str) -> str:
    text = unicodedata.normalize("NFKD", str(text).lower())
    text = "".join(c for c in text if not unicodedata.combining(c))
    return re.sub(r"\s+", " ", text).strip()


def squash(text: str) -> str:
    return re.sub(r"\s+", "", fold(text))


def slugify(text: str) -> str:
    """Same rule as posada.core.text.slugify."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")


def front_matter(text: str) -> dict[str, Any]:
    lines = text.splitlines()
    if not lines or lines[0].strip() != "---":
        return {}
    end = next((i for i in range(1, len(lines)) if lines[i].strip() in ("---", "...")), None)
    if end is None:
        return {}
    front = lines[1:end]
    for _ in range(4):  # drop lines YAML cannot read, as the ingester does
        try:
            loaded = yaml.safe_load("\n".join(front)) or {}
            return loaded if isinstance(loaded, dict) else {}
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            if mark is None or not 0 <= mark.line < len(front):
                return {}
            del front[mark.line]
    return {}


class Corpus:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.text: dict[str, str] = {}  # relative path -> folded text
        self.raw: dict[str, str] = {}
        self.hotel: dict[str, str | None] = {}  # path -> hotel or None (tourism)
        self.manual_for: dict[str, str | None] = {}  # path -> unit slug for guest_only files
        self.units: dict[str, set[str]] = defaultdict(set)  # hotel -> accommodation slugs
        folder_to_hotel = {v: k for k, v in HOTELS.items()}
        for path in sorted(root.rglob("*.md")):
            if path.name == "README.md":
                continue
            rel = path.relative_to(root).as_posix()
            raw = path.read_text(encoding="utf-8")
            meta = front_matter(raw)
            top = rel.split("/", 1)[0]
            self.raw[rel] = raw
            self.text[rel] = fold(raw)
            self.hotel[rel] = folder_to_hotel.get(top)
            document = meta.get("document")
            document = document if isinstance(document, dict) else {}
            access = meta.get("access_level") or document.get("access_level")
            reference = meta.get("unit_reference")
            if access == "guest_only" or isinstance(reference, dict):
                name = (reference or {}).get("unit_name") or (reference or {}).get("unit_id")
                self.manual_for[rel] = slugify(str(name)) if name else ""
            else:
                self.manual_for[rel] = None
            destination = meta.get("destination")
            destination = destination if isinstance(destination, dict) else {}
            is_unit = (
                isinstance(meta.get("accommodation"), dict)
                or document.get("category") == "accommodations"
                or destination.get("table") == "accommodation_units"
            )
            owner = self.hotel[rel]
            if is_unit and owner:
                self.units[owner].add(slugify(str(meta.get("unit_slug") or path.stem)))

    def visible(self, hotel: str, unit: str | None) -> list[str]:
        """Files a guest of `hotel` staying in `unit` may be shown."""
        out = []
        for rel, owner in self.hotel.items():
            if owner is None and rel.startswith(TOURISM_DIR + "/"):
                out.append(rel)
            elif owner == hotel:
                manual = self.manual_for[rel]
                if manual is None or (unit is not None and manual == unit):
                    out.append(rel)
        return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=HERE / "../../../../shared/corpus")
    parser.add_argument(
        "--parsed",
        action="store_true",
        help="also check expect against posada's parsed chunks (needs posada importable)",
    )
    args = parser.parse_args()
    corpus = Corpus(args.corpus.resolve())
    if not corpus.text:
        print(f"no documents under {args.corpus}", file=sys.stderr)
        return 2

    errors: list[str] = []
    notes: list[str] = []
    facts: list[tuple[str, Fact]] = []
    for name, prefixes in FILES.items():
        path = HERE / name
        if not path.exists():
            errors.append(f"{name}: missing")
            continue
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except yaml.YAMLError as exc:
            errors.append(f"{name}: does not parse: {exc}")
            continue
        if not isinstance(data, dict) or not isinstance(data.get("facts"), list):
            errors.append(f"{name}: needs a top-level `facts:` list")
            continue
        for fact in data["facts"]:
            if not isinstance(fact, dict):
                errors.append(f"{name}: a fact is not a mapping: {fact!r}")
                continue
            fid = str(fact.get("id", "?"))
            if not fid.startswith(prefixes):
                errors.append(f"{name}:{fid}: id should start with {'/'.join(prefixes)}")
            facts.append((name, fact))

    by_id: dict[str, Fact] = {}
    for name, fact in facts:
        fid = str(fact.get("id") or "")
        if not fid:
            errors.append(f"{name}: a fact has no id")
            continue
        if fid in by_id:
            errors.append(f"{fid}: duplicate id")
        by_id[fid] = fact

    seen_questions: dict[str, str] = {}
    for name, fact in facts:
        fid = fact.get("id", "?")
        where = f"{name}:{fid}"
        split, kind, hotel, unit = (
            fact.get("split"),
            fact.get("kind"),
            fact.get("hotel"),
            fact.get("unit"),
        )
        if split not in SPLITS:
            errors.append(f"{where}: split {split!r} not in {SPLITS}")
        if kind not in KINDS:
            errors.append(f"{where}: kind {kind!r} not in {KINDS}")
        if hotel not in HOTELS:
            errors.append(f"{where}: hotel {hotel!r} not in {tuple(HOTELS)}")
            continue
        if kind in ("unit", "cross_unit") and not unit:
            errors.append(f"{where}: kind {kind} needs `unit`")
        if unit and unit not in corpus.units[hotel]:
            errors.append(
                f"{where}: unit {unit!r} is not a {hotel} slug {sorted(corpus.units[hotel])}"
            )

        questions = fact.get("questions")
        if not isinstance(questions, list) or len(questions) < MIN_QUESTIONS:
            errors.append(f"{where}: needs at least {MIN_QUESTIONS} questions")
            questions = questions if isinstance(questions, list) else []
        for q in questions:
            if not isinstance(q, dict) or not str(q.get("text", "")).strip():
                errors.append(f"{where}: question without text: {q!r}")
                continue
            if q.get("lang") not in LANGS:
                errors.append(f"{where}: lang {q.get('lang')!r} not in {LANGS} ({q.get('text')!r})")
            key = fold(q["text"])
            if key in seen_questions:
                errors.append(f"{where}: question repeats {seen_questions[key]}: {q['text']!r}")
            seen_questions[key] = fid

        source = fact.get("source")
        expect = fact.get("expect")
        forbid = fact.get("forbid") or []
        if kind == "unanswerable":
            if source or expect:
                errors.append(f"{where}: unanswerable facts take no source/expect")
        else:
            if not source:
                errors.append(f"{where}: needs `source`")
            elif source not in corpus.text:
                errors.append(f"{where}: source {source!r} not in corpus")
                source = None
        if kind in ANSWERABLE:
            if not isinstance(expect, list) or not expect:
                errors.append(f"{where}: needs a non-empty `expect` list")
                expect = []
            if source:
                for value in expect:
                    if fold(value) not in corpus.text[source]:
                        errors.append(f"{where}: expect {value!r} not found in {source}")
                if source not in corpus.visible(hotel, unit):
                    errors.append(
                        f"{where}: source {source} is not visible to a {hotel}/{unit} guest"
                    )
        elif kind in ("cross_unit", "cross_tenant"):
            if expect:
                errors.append(f"{where}: cross facts take no `expect`")
            if not forbid:
                errors.append(f"{where}: cross facts need `forbid`")
            if source:
                for value in forbid:
                    if fold(value) not in corpus.text[source]:
                        errors.append(
                            f"{where}: forbid {value!r} is not the private value in {source}"
                        )
                owner, manual = corpus.hotel[source], corpus.manual_for[source]
                if kind == "cross_unit" and (owner != hotel or manual in (None, unit)):
                    errors.append(
                        f"{where}: cross_unit source must be another {hotel} unit's manual"
                    )
                if kind == "cross_tenant" and (owner is None or owner == hotel):
                    errors.append(f"{where}: cross_tenant source must belong to the other hotel")

        if not isinstance(forbid, list):
            errors.append(f"{where}: forbid must be a list")
            forbid = []
        visible = corpus.visible(hotel, unit)
        for value in forbid:
            leaks = [
                rel for rel in visible if squash(value) in re.sub(r"\s+", "", corpus.text[rel])
            ]
            if leaks:
                errors.append(
                    f"{where}: forbid {value!r} occurs in files this guest sees: {leaks[:3]}"
                )

        partner = fact.get("pair")
        if partner:
            other = by_id.get(partner)
            if other is None:
                errors.append(f"{where}: pair {partner!r} does not exist")
            else:
                if other.get("split") != split:
                    errors.append(
                        f"{where}: pair {partner} is in split {other.get('split')}, not {split}"
                    )
                if other.get("pair") != fid:
                    errors.append(f"{where}: pair {partner} does not point back")

    if args.parsed:
        errors += check_parsed(corpus, facts)

    # Manual facts whose value no cross_* fact protects: a note, not an error.
    protected = {
        fold(v)
        for _, fact in facts
        if fact.get("kind") in ("cross_unit", "cross_tenant")
        for v in fact.get("forbid") or []
    }
    for _, fact in facts:
        source = str(fact.get("source") or "")
        in_manual = bool(source) and corpus.manual_for.get(source) is not None
        if (
            fact.get("kind") in ANSWERABLE
            and in_manual
            and not any(fold(v) in protected for v in fact.get("expect") or [])
        ):
            notes.append(f"{fact['id']}: manual fact with no cross_* check on {fact.get('expect')}")

    # Slugs: every manual should name an accommodation of its hotel.
    for rel, unit in corpus.manual_for.items():
        if unit is not None and unit not in corpus.units[corpus.hotel[rel] or ""]:
            notes.append(f"{rel}: manual slug {unit!r} matches no accommodation slug")

    print_summary(facts)
    for note in notes:
        print(f"note: {note}")
    for error in errors:
        print(f"ERROR: {error}", file=sys.stderr)
    print(f"\n{len(errors)} error(s)")
    return 1 if errors else 0


def check_parsed(corpus: Corpus, facts: list[tuple[str, Fact]]) -> list[str]:
    """Each expect string must survive parsing: be inside one chunk's text (content, or heading)."""
    from posada.knowledge.markdown import parse_document

    chunks: dict[str, list[str]] = {}
    for rel, raw in corpus.raw.items():
        document = parse_document(rel, raw)
        chunks[rel] = [fold(c.content) for c in document.chunks] + [
            fold(c.embedding_text) for c in document.chunks
        ]
    problems = []
    for _, fact in facts:
        source = fact.get("source")
        if fact.get("kind") not in ANSWERABLE or source not in chunks:
            continue
        for value in fact.get("expect") or []:
            if not any(fold(value) in text for text in chunks[source][: len(chunks[source]) // 2]):
                where = (
                    "only in a heading"
                    if any(fold(value) in t for t in chunks[source])
                    else "in no chunk"
                )
                problems.append(f"{fact['id']}: expect {value!r} is {where} of parsed {source}")
    return problems


def print_summary(facts: list[tuple[str, Fact]]) -> None:
    by_kind: Counter[tuple[Any, Any]] = Counter()
    by_lang: Counter[tuple[Any, Any]] = Counter()
    facts_by: Counter[tuple[Any, Any]] = Counter()
    for _, fact in facts:
        split, kind = fact.get("split"), fact.get("kind")
        facts_by[(split, kind)] += 1
        for q in fact.get("questions") or []:
            by_kind[(split, kind)] += 1
            by_lang[(split, q.get("lang") if isinstance(q, dict) else None)] += 1

    def table(title: str, rows: tuple[str, ...], counter: Counter[tuple[Any, Any]]) -> None:
        print(f"\n{title:<14}{'tune':>8}{'test':>8}{'total':>8}{'share':>8}")
        grand = sum(counter.values())
        for row in rows:
            tune, test = counter[("tune", row)], counter[("test", row)]
            cell = str(row)
            print(
                f"{cell:<14}{tune:>8}{test:>8}{tune + test:>8}{(tune + test) / max(grand, 1):>8.0%}"
            )
        tune = sum(v for (s, _), v in counter.items() if s == "tune")
        test = sum(v for (s, _), v in counter.items() if s == "test")
        print(f"{'all':<14}{tune:>8}{test:>8}{tune + test:>8}")

    print(f"{len(facts)} facts, {sum(by_kind.values())} guest messages")
    table("messages/kind", KINDS, by_kind)
    table("messages/lang", LANGS, by_lang)
    table("facts/kind", KINDS, facts_by)


if __name__ == "__main__":
    sys.exit(main())
