"""Generate the sample customer "acme" (the customer-data format) from examples/acme_templates.yaml.

Deterministic: the same templates and seed give the same bytes. Usage:
    python examples/generate_acme.py examples/customers/acme
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import random
import re
from pathlib import Path

import yaml

TEMPLATES = Path(__file__).with_name("acme_templates.yaml")
SEED = 20261125
TEXTS_PER_INTENT = 64
QUERIES_PER_ARTICLE = 16
REPLY_PAIRS = 1200
SLOT = re.compile(r"\{(\w+)\}")


def fill(template: str, slots: dict[str, list[str]], rng: random.Random) -> str:
    return SLOT.sub(lambda m: rng.choice(slots[m.group(1)]), template)


def customer_message(
    core: str, spec: dict, rng: random.Random, slots: dict[str, list[str]] | None = None
) -> str:
    text = fill(core, slots or spec["slots"], rng)
    opener = rng.choice(spec["openers"])
    closer = rng.choice(spec["closers"])
    starts_sentence = not opener or opener.rstrip().endswith((".", ":"))
    if starts_sentence:
        text = text[0].upper() + text[1:]
    elif not text.startswith("I "):
        text = text[0].lower() + text[1:]
    if closer and not text.endswith(("?", ".", "!")):
        text += "."
    text = opener + text + closer
    if rng.random() < 0.15:
        text = text.lower()
    if rng.random() < 0.1:
        text = text.rstrip("?!.")
    return text.strip()


def unique_messages(cores: list[str], count: int, spec: dict, rng: random.Random) -> list[str]:
    seen: dict[str, None] = {}
    attempts = 0
    while len(seen) < count and attempts < count * 50:
        attempts += 1
        seen.setdefault(customer_message(rng.choice(cores), spec, rng), None)
    return list(seen)


def intents_rows(spec: dict, rng: random.Random) -> list[tuple[str, str]]:
    rows = [
        (text, intent)
        for intent, cores in spec["intents"].items()
        for text in unique_messages(cores, TEXTS_PER_INTENT, spec, rng)
    ]
    rng.shuffle(rows)
    return rows


def articles_and_pairs(spec: dict, rng: random.Random) -> tuple[list[dict], list[tuple[str, str]]]:
    articles, pairs = [], []
    for article in spec["articles"]:
        articles.append({"id": article["id"], "title": article["title"], "body": article["body"]})
        cores = spec["intents"].get(article.get("intent")) or spec["article_queries"][article["id"]]
        for query in unique_messages(cores, QUERIES_PER_ARTICLE, spec, rng):
            pairs.append((query, article["id"]))
    rng.shuffle(pairs)
    return articles, pairs


def reply_pairs(spec: dict, rng: random.Random) -> list[dict]:
    intents = list(spec["replies"])
    pairs = []
    for _ in range(REPLY_PAIRS):
        intent = rng.choice(intents)
        # One value per slot, so the reply speaks of the same item, order and name as the message.
        slots = {name: [rng.choice(values)] for name, values in spec["slots"].items()}
        turns = []
        if rng.random() < 0.5:
            turns.append(fill(rng.choice(spec["agent_greetings"]), slots, rng))
        message = customer_message(rng.choice(spec["intents"][intent]), spec, rng, slots)
        turns.append(f"Customer ({slots['name'][0]}): {message}")
        reply = fill(rng.choice(spec["replies"][intent]), slots, rng)
        pairs.append({"context": "\n".join(turns), "reply": reply})
    return pairs


def csv_text(header: tuple[str, str], rows: list[tuple[str, str]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue()


def jsonl_text(records: list[dict]) -> str:
    return "".join(json.dumps(record, ensure_ascii=False) + "\n" for record in records)


def generate(out_dir: Path, seed: int = SEED) -> dict[str, int]:
    """Write intents.csv, articles.jsonl, pairs.csv and replies.jsonl; return row counts."""
    spec = yaml.safe_load(TEMPLATES.read_text(encoding="utf-8"))
    rng = random.Random(seed)
    intents = intents_rows(spec, rng)
    articles, pairs = articles_and_pairs(spec, rng)
    replies = reply_pairs(spec, rng)
    out_dir.mkdir(parents=True, exist_ok=True)
    files = {
        "intents.csv": csv_text(("text", "intent"), intents),
        "articles.jsonl": jsonl_text(articles),
        "pairs.csv": csv_text(("query", "article_id"), pairs),
        "replies.jsonl": jsonl_text(replies),
    }
    for name, text in files.items():
        (out_dir / name).write_text(text, encoding="utf-8", newline="")
    return {
        "intents": len(intents),
        "articles": len(articles),
        "pairs": len(pairs),
        "replies": len(replies),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", type=Path, nargs="?", default=Path("examples/customers/acme"))
    parser.add_argument("--seed", type=int, default=SEED)
    args = parser.parse_args()
    counts = generate(args.out_dir, args.seed)
    print(f"wrote {args.out_dir}: " + ", ".join(f"{n} {k}" for k, n in counts.items()))


if __name__ == "__main__":
    main()
