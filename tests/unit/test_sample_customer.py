import csv
import json
from collections import Counter

from examples.generate_acme import generate
from test_support.paths import ACME


def test_generator_reproduces_the_committed_sample_byte_for_byte(tmp_path):
    generate(tmp_path)
    for path in sorted(ACME.iterdir()):
        assert (tmp_path / path.name).read_bytes() == path.read_bytes(), path.name


def test_sample_customer_has_the_promised_size():
    with (ACME / "intents.csv").open(encoding="utf-8") as handle:
        intents = Counter(row["intent"] for row in csv.DictReader(handle))
    assert len(intents) >= 12
    assert min(intents.values()) >= 40
    articles = [json.loads(line) for line in (ACME / "articles.jsonl").open(encoding="utf-8")]
    assert len(articles) >= 20
    with (ACME / "pairs.csv").open(encoding="utf-8") as handle:
        pairs = list(csv.DictReader(handle))
    assert {pair["article_id"] for pair in pairs} == {article["id"] for article in articles}
    replies = (ACME / "replies.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(replies) >= 1000


def test_intent_texts_are_varied():
    with (ACME / "intents.csv").open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert len({row["text"] for row in rows}) == len(rows)
