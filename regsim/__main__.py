import sys

from regsim.cli import main

sys.exit(main())
