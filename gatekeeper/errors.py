"""Errors a user can cause. The CLI prints them without a traceback."""

from __future__ import annotations


class UserError(Exception):
    """An error in input the user controls (config, layout, arguments).

    ``messages`` holds every problem found, each already formatted for
    people (``FILE:LINE: path.to.key: message``)."""

    def __init__(self, messages: str | list[str]):
        if isinstance(messages, str):
            messages = [messages]
        self.messages = list(messages)
        super().__init__("\n".join(self.messages))
