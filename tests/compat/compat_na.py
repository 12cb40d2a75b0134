"""redis-py tests that cannot apply to iokernel, with the reason for each.

Node-id patterns (fnmatch) relative to redis-py's source root -> why. Tests
redis-py itself skips (server version, cluster, modules) are not listed:
they are skipped there already, or deselected by the runner's ``-m``.
"""

from __future__ import annotations

NOT_APPLICABLE: dict[str, str] = {}
