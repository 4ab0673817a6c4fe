"""``python -m activelabel``: the command line, as the ``activelabel`` script runs it."""

from activelabel.cli import entry

if __name__ == "__main__":
    entry()
