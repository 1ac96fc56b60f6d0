"""`python -m ssm.hippo report [N ...]` prints the PTD acceptance table."""
import sys

from .report import main

sys.exit(main())
