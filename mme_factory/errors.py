"""The few exceptions the project raises on purpose; each message says what to fix."""

from __future__ import annotations


class MmeFactoryError(Exception):
    """Base of every error the command line reports without a traceback."""


class SettingsError(MmeFactoryError):
    """A settings file or environment override is missing, malformed or out of range."""


class StoreError(MmeFactoryError):
    """An artifact-store location or key is invalid, missing or unreadable."""


class ValidationFailed(MmeFactoryError):
    """Customer data broke one or more validation rules; the message lists every one."""

    def __init__(self, message: str, report_markdown: str) -> None:
        super().__init__(message)
        self.report_markdown = report_markdown
