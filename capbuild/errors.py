"""The errors capbuild expects users to meet. The CLI prints these as plain text (exit code 2);
any other exception is a bug and shows its traceback."""

from __future__ import annotations


class CapbuildError(Exception):
    """An error the user can fix; its message says what to do next."""


class ConfigError(CapbuildError, ValueError):
    """An option, filter spec or combination of options is wrong."""


class InputError(CapbuildError, FileNotFoundError):
    """An input file, folder, glob or model is missing, unreadable or malformed."""


class BuildConflictError(CapbuildError, RuntimeError):
    """OUT holds something this build must not silently replace."""


class MissingExtraError(CapbuildError, ImportError):
    """An optional part of capbuild is not installed; the message names the install command."""

    def __init__(self, package: str, extra: str, needed_for: str) -> None:
        self.package, self.extra = package, extra
        super().__init__(
            f"{package} is not installed; {needed_for} needs it: pip install 'capbuild[{extra}]' "
            f"(from a checkout: pip install -e '.[{extra}]')"
        )


class StepError(CapbuildError, RuntimeError):
    """A text or image step failed on more rows than its error budget allows."""
