"""Every typed Redis command against a real server, through both clients.

Each test body is written once, as a coroutine that awaits every command, and
runs eight times: blocking ``redis.Client`` and asyncio ``redis.AsyncClient``,
each with ``decode_responses`` off and on (the ``r`` fixture), each against a
server that speaks RESP3 and one that only speaks RESP2 (HELLO renamed away,
so the kernel falls back; the ``url`` fixture): every reply parser meets both
wire shapes. For the blocking client the :class:`Driver` calls the method directly and checks it
did *not* return an awaitable, then hands the value to ``await``; for the
asyncio client it checks the method *did* return one. ``r.v("x")`` is the
reply the mode expects for the string ``x`` (bytes, or str when decoding).

Side effects are checked with an independent reference client (redis-py,
``ref``) wherever the client's own reads could hide a wrong argument.

Layout: driver.py (Driver, PipeDriver, ScriptDriver), conftest.py (the
``url``, ``r`` and ``ref`` fixtures), and one test module per command family:
test_strings_keys.py, test_hashes_lists_sets.py, test_sorted_sets.py,
test_server_scripts_pipelines.py, test_shared_refusals.py.
"""
