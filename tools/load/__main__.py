import sys

from tools.load.generator import main

sys.exit(main())
