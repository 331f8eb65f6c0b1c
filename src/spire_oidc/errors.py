"""The exception tree of the provider.

::

    ProviderError                 every error this package raises on purpose; describe() is one
    │                             line for the operator (the CLI prints it)
    ├── ConfigError               a configuration file is unreadable, malformed or invalid
    ├── ConfigValueError          one value is malformed: raised by the config parsers, reported
    │   │                         as a ConfigError that names file and key (also a ValueError)
    │   ├── DomainError           config/domains.py: a domain name or trust domain
    │   ├── DurationError         config/gocompat.py: a Go duration
    │   ├── GoURLError            config/gourl.py: a URL, as Go's url.Parse
    │   ├── GoAddrError           config/gocompat.py: a listen address, as Go's net package
    │   └── StorageURLError       config/storage_url.py: an acme.storage or publish.url value
    ├── FlagError                 config/goflag.py: a command-line flag (Go's flag package text)
    ├── StartupError              the provider cannot start (bind failure, bad certificate, ...)
    │   └── UnsafePathError       core/private_paths.py: a state or cache path another user could
    │                             write (mode or owner), with the fix
    ├── SourceError               an upstream key source failed (one fetch; the last good keys stay)
    │   ├── KeyParseError         one key from upstream is malformed (it is skipped, never served)
    │   └── SvidError             sources/serving_svid.py: an X.509-SVID from the agent cannot be
    │                             served (wrong ID, unparsable, key mismatch)
    ├── AcmeError                 acme/session.py: an ACME request or order failed (the CA's
    │                             problem document, transient or not, its Retry-After)
    ├── CacheError                acme/cache.py: the certificate cache cannot be read or written
    │                             (also an OSError)
    ├── EntryError                acme/certs.py: a cached or issued certificate is unusable
    │                             (also a ValueError)
    ├── WorkerStopped             acme/worker.py: a request reached the stopped ACME worker
    │                             (also a RuntimeError)
    ├── LockLost                  acme/lock.py: this replica lost the shared order lock (its
    │                             order stops at once)
    ├── StorageError              storage/base.py: an object-store request failed (``reason``
    │   │                         from a fixed vocabulary, for metrics)
    │   └── PreconditionFailed    a conditional write lost (CREATE on an existing object, or
    │                             IfMatch on a changed one)
    ├── TokenError                doctor/jws.py: a token given to ``doctor`` is not a compact JWS
    │                             (also a ValueError)
    └── DemoError                 demo.py: the demo directory cannot be used as asked

Each class lives beside the code that raises it (the ones above without a module, here);
``tests/unit/test_errors.py`` checks that every exception class in the package is in this tree.

Foreign exceptions (``OSError``, ``grpc.RpcError``, ``ssl.SSLError``, ``requests``, ``acme``,
``json``, ...) are translated into these at the module that calls the foreign code, with
``raise ... from exc`` (httpcore's rule): acme/session.py for ``acme``/``requests``/``josepy``,
the sources for gRPC, http/listeners.py and http/tls.py for ``OSError``/``ssl`` at start-up.

Not in the tree, on purpose: exceptions private to one module that never leave it
(``_IdnaError``, ``_Syntax``, ``RangeError``, ``NotClientHello``, and the HCL layer's
``HclSyntaxError``, ``JsonSyntaxError`` and ``_Eof``, which config/hcl.py turns into
``ConfigError``) and ``HelpRequested``, which is control flow (``-h``), not an error.
"""

from __future__ import annotations


class ProviderError(Exception):
    """Base class of every error raised on purpose by the provider."""

    def describe(self) -> str:
        """One line for the operator: the message with line breaks and runs of spaces folded."""
        text = " ".join(str(self).split())
        return text or type(self).__name__


class ConfigError(ProviderError):
    """A configuration problem.

    ``str(err)`` is SPIRE's wording for the same problem (so operators and SPIRE's tests recognise
    it); ``path``, ``line``, ``column`` and ``key`` add where it is, when known.
    """

    def __init__(
        self,
        message: str,
        *,
        path: str | None = None,
        line: int | None = None,
        column: int | None = None,
        key: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.path = path
        self.line = line
        self.column = column
        self.key = key

    def describe(self) -> str:
        """One line for the operator: file, position and key first, then SPIRE's message."""
        where: list[str] = []
        if self.path:
            pos = self.path
            if self.line is not None:
                pos += f":{self.line}"
                if self.column is not None:
                    pos += f":{self.column}"
            where.append(pos)
        if self.key:  # always: a key name inside the message may be another key's
            where.append(f"key {self.key}")
        if where:
            return f"{', '.join(where)}: {self.message}"
        return self.message


class ConfigValueError(ProviderError, ValueError):
    """One configuration value is malformed; the config layer reports it as a ConfigError."""


class StartupError(ProviderError):
    """The provider cannot start: a listener cannot bind, a certificate cannot load, ..."""


class SourceError(ProviderError):
    """One fetch from an upstream key source failed."""


class KeyParseError(SourceError):
    """One key delivered by upstream is malformed or unsupported; it is skipped."""

    def __init__(self, kid: str, reason: str) -> None:
        super().__init__(f"key {kid!r}: {reason}")
        self.kid = kid
        self.reason = reason
