"""Package data (resources, reply wording): a regular package so importlib.resources finds it."""
