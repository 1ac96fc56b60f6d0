"""Kernel tests keep probe verdicts in a private cache dir (never the user's ~/.cache/ssm)."""
import os
import tempfile

os.environ.setdefault("SSM_CACHE_DIR", tempfile.mkdtemp(prefix="ssm-test-cache-"))
