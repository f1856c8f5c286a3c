"""The `capbuild` command line (Typer). Library modules never import this package."""

from capbuild.cli.app import make_app

app = make_app()


def main() -> None:
    """The `capbuild` console script: the app built at import, with every builder registered by then."""
    app()


__all__ = ["app", "main", "make_app"]
