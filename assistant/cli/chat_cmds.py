"""Placeholder: commands are added here by their issue."""


def register(sub) -> None:  # noqa: ANN001
    return None
