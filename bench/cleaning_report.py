"""Per corpus folder: documents, chunks, FAQ entries, and the noise left in what is indexed.

Reads the real hotel documents at run time (default ../shared/corpus) and parses them as
ingest does; nothing is stored. Noise counted in chunk and FAQ text: HTML comments,
`{#anchors}`, `[PLACEHOLDER]` tags, emoji, bold markers, image addresses, and FAQ answers
that are empty once placeholders are gone.

    .venv/bin/python bench/cleaning_report.py [--corpus DIR] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import re
from collections import Counter
from pathlib import Path

from posada.knowledge.markdown import DocumentError, parse_document

NOISE = {
    "comments": re.compile(r"<!--|-->"),
    "anchors": re.compile(r"\{#[^}]*\}"),
    "placeholders": re.compile(r"\[[A-Z_]{4,}[^\]]*\]"),
    "emoji": re.compile("[\U0001f000-\U0001faff\u2600-\u27bf]"),
    "bold": re.compile(r"\*\*"),
    "image_urls": re.compile(r"https?://\S+\.(?:jpe?g|png|webp)", re.IGNORECASE),
}


def measure(corpus: Path) -> dict[str, dict[str, int]]:
    """The figures per top-level folder (hotel or tourism)."""
    report: dict[str, Counter[str]] = {}
    for path in sorted(corpus.rglob("*.md")):
        if path.name == "README.md":
            continue
        folder = path.relative_to(corpus).parts[0]
        counts = report.setdefault(folder, Counter())
        counts["documents"] += 1
        try:
            doc = parse_document(path.relative_to(corpus).as_posix(), path.read_text())
        except DocumentError:
            counts["failed"] += 1
            continue
        counts["chunks"] += len(doc.chunks)
        counts["faq_entries"] += len(doc.faqs)
        counts["chunk_chars"] += sum(len(c.content) for c in doc.chunks)
        texts = [c.heading + "\n" + c.content for c in doc.chunks]
        texts += [f.question + "\n" + f.answer for f in doc.faqs]
        for name, pattern in NOISE.items():
            counts[f"noise_{name}"] += sum(len(pattern.findall(t)) for t in texts)
        counts["faq_without_answer"] += sum(
            not NOISE["placeholders"].sub("", f.answer).strip(" .-\n") for f in doc.faqs
        )
    return {folder: dict(counts) for folder, counts in report.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=Path("../shared/corpus"))
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    figures = measure(args.corpus)
    keys = sorted({k for counts in figures.values() for k in counts})
    print("figure".ljust(24) + "".join(folder.rjust(15) for folder in figures))
    for key in keys:
        print(key.ljust(24) + "".join(str(c.get(key, 0)).rjust(15) for c in figures.values()))
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
