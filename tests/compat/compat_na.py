"""redis-py tests that cannot apply to iokernel, with the reason for each.

Test names (``path::Class::test``, parameters such as ``[single]`` stripped;
fnmatch patterns) -> why. Tests redis-py itself skips for the server version
are not listed (they are skipped there already), nor those the runner
deselects by marker (cluster, modules, replica). Every entry is one of:

* INTERNALS: the test inspects or mocks redis-py's own machinery (connection
  pools, response callbacks, parse_response, execute_command options,
  metrics hooks), not the behaviour of a command;
* SHARED: the command would change or stall the one connection all callers
  of an iokernel client share, which iokernel refuses by design with a
  message saying what to use instead (SELECT, QUIT, RESET, HELLO, AUTH,
  MONITOR, CLIENT REPLY/TRACKING, pub/sub), or the test counts connections
  that iokernel deliberately shares;
* CLUSTER: redis-py's cluster commands run against mocked cluster replies;
* TOPOLOGY: needs a replica, failover target or would crash the server;
* REDIS8: a command or option of Redis 8.x, which neither Redis 7.x nor
  Valkey 8 (issue 15's scope) has; the test checks only redis-py's
  client-side validation of it;
* SERVER: the reply of Debian's Redis 7.0 differs from the newer server the
  test was written against (redis-py did not mark it with a version).
"""

from __future__ import annotations

INTERNALS = "INTERNALS: inspects or mocks redis-py's own machinery"
SHARED = "SHARED: changes, stalls or counts the connection iokernel shares by design"
CLUSTER = "CLUSTER: redis-py cluster commands against mocked cluster replies"
TOPOLOGY = "TOPOLOGY: needs a replica/failover target, or crashes the server"
REDIS8 = "REDIS8: a Redis 8.x command/option (not in Redis 7.x or Valkey 8)"
SERVER70 = "SERVER: Redis 7.0 spells the reply differently from the newer server the test expects"

_C = "tests/test_commands.py::TestRedisCommands::"
_AC = "tests/test_asyncio/test_commands.py::TestRedisCommands::"
_P = "tests/test_pipeline.py::TestPipeline::"
_AP = "tests/test_asyncio/test_pipeline.py::TestPipeline::"


def _both(names: dict[str, str], *prefixes: str) -> dict[str, str]:
    return {p + name: why for name, why in names.items() for p in prefixes}


NOT_APPLICABLE: dict[str, str] = {
    "tests/test_commands.py::TestResponseCallbacks::*": INTERNALS,
    "tests/test_asyncio/test_commands.py::TestResponseCallbacks::*": INTERNALS,
    "tests/test_asyncio/test_commands.py::TestAsyncXreadXreadgroupMetricsExport::*": INTERNALS,
    "tests/test_commands.py::TestXreadXreadgroupMetricsExport::*": INTERNALS,
    **_both(
        {
            "test_never_decode_option": INTERNALS,
            "test_empty_response_option": INTERNALS,
            "test_slowlog_get": INTERNALS,  # patches r.parse_response
            "test_interrupted_command": INTERNALS,
            "test_client_kill_filter_accepts_replica_type": INTERNALS,  # mocks execute_command
            # counts the ACL LOG entry redis-py's own handshake (CLIENT SETINFO) leaves
            "test_acl_log": INTERNALS,
            "test_cluster_*": CLUSTER,
            "test_readonly": CLUSTER,
            "test_readonly_invalid_cluster_state": CLUSTER,
            "test_auth": SHARED,
            "test_select": SHARED,
            "test_quit": SHARED,
            "test_reset": SHARED,
            "test_hello_notI_implemented": SHARED,
            "test_client_reply": SHARED,
            "test_client_tracking": SHARED,
            "test_client_kill": SHARED,  # r and r2 are one shared connection
            "test_client_kill_filter_by_id": SHARED,
            "test_client_kill_filter_by_addr": SHARED,
            "test_client_kill_filter_by_laddr": SHARED,
            # the shared connection is re-established at once after CLIENT KILL
            "test_client_kill_filter_by_user": SHARED,
            "test_bitfield_operations": SHARED,  # SELECT 10 on the shared connection
            "test_failover": TOPOLOGY,
            "test_replicaof": TOPOLOGY,
            "test_debug_segfault": TOPOLOGY,
            # Redis 7.0 drops the redundant -@geo after -@all in ACL GETUSER
            "test_acl_getuser_setuser": SERVER70,
            # Redis 7.0 reports lag -6 for a group created with ENTRIESREAD 7 on 1 entry
            "test_xgroup_create_entriesread": SERVER70,
            "test_increx_*": REDIS8,
            "test_msetex_*": REDIS8,
            "test_hgetex_*": REDIS8,
            "test_hsetex_*": REDIS8,
            "test_set_empty_condition_is_mutually_exclusive": REDIS8,
            "test_xread_max_count_max_size_validation": REDIS8,
            "test_xreadgroup_max_count_max_size_validation": REDIS8,
        },
        _C,
        _AC,
    ),
    **_both(
        {
            "test_watch_exec_no_unwatch": SHARED,  # MONITOR
            "test_watch_reset_unwatch": SHARED,  # MONITOR
            "test_pipeline_reset_releases_connection_when_cancelled": INTERNALS,
            "test_pipeline_json_module_access": "MODULES: RedisJSON",
        },
        _P,
        _AP,
    ),
}
