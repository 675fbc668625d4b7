import sys

from hoopcli.cli import main

sys.exit(main())
