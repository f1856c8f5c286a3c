"""`python -m capbuild` runs the command-line interface."""

from capbuild.cli import main

if __name__ == "__main__":
    main()
