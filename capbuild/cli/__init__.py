"""The `capbuild` command line (Typer). Library modules never import this package."""

from capbuild.cli.app import main, make_app

app = make_app()

__all__ = ["app", "main", "make_app"]
