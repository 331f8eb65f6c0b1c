"""Reusable fakes that speak SPIRE's wire protocols on unix sockets (real ``grpc.aio`` servers).

* :mod:`tests.fakes.fake_workload_api`: a SPIRE agent's SPIFFE Workload API (``FetchJWTBundles``).
* :mod:`tests.fakes.fake_server_api`: a SPIRE server's ``Bundle/GetBundle`` (server API).
* :mod:`tests.fakes.keys`: test keys and their JWK / PKIX encodings.
* :mod:`tests.fakes.sink`: a recording ``KeySink`` with awaitable conditions.

They are driven from the test (set the bundle, push on every open stream, fail, kill, restart)
and count what they saw, so fault-injection suites can use them too.
"""
