"""`python -m ssl_core <command>`: see cli.py."""
import sys

from ssl_core.cli import main

sys.exit(main())
