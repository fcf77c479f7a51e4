import sys

from ganmetrics.cli import main

sys.exit(main())
