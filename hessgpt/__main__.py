import sys

from hessgpt.cli import main

sys.exit(main())
