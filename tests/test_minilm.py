"""The shared MiniLM: the same embeddings as sentence-transformers, and one read of a turn's
text through the bottom layers, shared by the query embedding and the triage's tuned layers."""

from __future__ import annotations

import numpy as np
import pytest

from assistant.index import local_model_dir
from assistant.minilm import MiniLM
from assistant.triage_model import TriageModel

pytestmark = pytest.mark.slow

TEXTS = [
    "how do we plan a date night",
    "hi",
    "We barely talk anymore. He comes home, eats, plays on his phone and goes to bed. "
    "I keep wondering if I should say something or just wait for it to pass. " * 6,
    "word " * 400,  # longer than 256 tokens: cut as sentence-transformers cuts it
]


def test_embeddings_match_sentence_transformers():
    from sentence_transformers import SentenceTransformer

    reference = SentenceTransformer(str(local_model_dir()), device="cpu",
                                    local_files_only=True).encode(TEXTS,
                                                                  normalize_embeddings=True)
    model = MiniLM(local_model_dir())
    np.testing.assert_allclose(np.array(model.embed_documents(TEXTS)), reference, atol=1e-5)
    np.testing.assert_allclose(model.embed_query(TEXTS[2]), reference[2], atol=1e-5)


class Counting(MiniLM):
    def __init__(self, model_dir):
        super().__init__(model_dir)
        self.lower_rows: list[int] = []

    def lower(self, enc, upto):
        self.lower_rows.append(int(enc["input_ids"].shape[0]))
        return super().lower(enc, upto)


def test_the_triage_continues_from_the_query_embeddings_bottom_layers():
    model = TriageModel.load()
    assert model.reads_text, "the committed triage model is the fine-tuned MiniLM"
    shared = Counting(local_model_dir())
    alone = TriageModel.load().tuned_encoder()  # its own MiniLM: reads every text itself
    tuned = model.tuned_encoder(shared)
    assert tuned.base is shared and shared.split == tuned.upto < shared.n_layers
    for text in TEXTS[:3]:
        shared.embed_query(text)  # the turn's query embedding
        shared.lower_rows.clear()
        p = tuned.probabilities([text])
        assert shared.lower_rows == [], "the bottom layers were read twice"
        np.testing.assert_allclose(p, alone.probabilities([text]), atol=1e-5)
    # a text the embedding has not read (a window, a long post's other part) is read once
    tuned.probabilities(["something nobody embedded yet", "and another one"])
    assert shared.lower_rows == [2]
    # the embedding itself is unchanged by sharing
    np.testing.assert_allclose(shared.embed_query(TEXTS[0]),
                               MiniLM(local_model_dir()).embed_query(TEXTS[0]), atol=1e-6)


def test_share_lower_rejects_a_split_outside_the_model():
    from assistant.errors import ModelError

    model = MiniLM(local_model_dir())
    for bad in (0, model.n_layers):
        with pytest.raises(ModelError):
            model.share_lower(bad)
