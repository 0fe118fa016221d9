import sys

from exchangectl.cli import main

sys.exit(main())
