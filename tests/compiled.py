"""Compile once per test process what every app compiles the same way.

A test process builds hundreds of apps (see conftest.build) from the same code. Each build
compiled every Jinja template it rendered (macros.html at once, the others on first use)
and every URL rule's builder again: about 0.4 s of the 0.5 s an app cost; and each app's
new engine compiled every SQL statement again (about a sixth of a test's time). These
results depend only on their input, so they are kept here and reused; the apps still get
their own Jinja environment, URL map, rules and engine, and render, route and query
exactly as before.

`install()` is called by conftest before any app is built. Subprocess appliances build one
app each and are left as they are.
"""

import weakref

import flask
from jinja2 import BytecodeCache
from jinja2.utils import _PassArg
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.util import LRUCache
from werkzeug.routing import rules


class SharedTemplates(BytecodeCache):
    """Jinja's documented bytecode cache, in memory, shared by every app of the process.

    Jinja keys a bucket by template name, file and a checksum of its source; the code also
    depends on the environment's syntax settings, extensions and on how each filter and
    test is called (context, environment or plain), so those are part of the key too.
    """

    def __init__(self):
        self.code: dict[tuple, bytes] = {}

    @staticmethod
    def _settings(env) -> tuple:
        def kinds(funcs: dict) -> tuple:
            return tuple(sorted((name, str(_PassArg.from_obj(f))) for name, f in funcs.items()))
        return (env.block_start_string, env.block_end_string, env.variable_start_string,
                env.variable_end_string, env.comment_start_string, env.comment_end_string,
                env.line_statement_prefix, env.line_comment_prefix, env.trim_blocks,
                env.lstrip_blocks, env.newline_sequence, env.keep_trailing_newline,
                env.optimized, env.is_async, repr(env.autoescape), repr(env.finalize),
                tuple(sorted(env.extensions)), kinds(env.filters), kinds(env.tests))

    def _key(self, bucket) -> tuple:
        return (bucket.key, bucket.checksum, self._settings(bucket.environment))

    def load_bytecode(self, bucket) -> None:
        code = self.code.get(self._key(bucket))
        if code is not None:
            bucket.bytecode_from_string(code)

    def dump_bytecode(self, bucket) -> None:
        self.code[self._key(bucket)] = bucket.bytecode_to_string()


_compile_builder = rules.Rule._compile_builder
_builders: dict[tuple, object] = {}


def _shared_builder(self, append_unknown: bool = True):
    """Werkzeug's Rule._compile_builder, memoized on everything the builder is made of.

    The builder is a plain function of the rule (bound to each Rule afterwards), generated
    from the rule's parsed parts, its defaults and its converters' settings.
    """
    converters = tuple(
        (name, type(conv).__module__, type(conv).__qualname__,
         repr(sorted((k, repr(v)) for k, v in vars(conv).items() if k != "map")))
        for name, conv in self._converters.items())
    key = (self.rule, tuple(self._trace), repr(sorted((self.defaults or {}).items())),
           converters, append_unknown)
    builder = _builders.get(key)
    if builder is None:
        builder = _builders[key] = _compile_builder(self, append_unknown)
    return builder


class SharedStatements:
    """SQLAlchemy's compiled-statement cache, shared by every engine of the process.

    An engine caches compiled SQL under (dialect, statement key, ...), the dialect by
    identity, so each app's new engine compiled every statement again. A statement's SQL
    depends only on the dialect's kind and settings: those replace its identity in the key.
    """

    def __init__(self, size: int = 5000):
        self.cache = LRUCache(size)
        self.kinds: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()

    def _key(self, key: tuple) -> tuple:
        d = key[0]
        kind = self.kinds.get(d)
        if kind is None:
            kind = self.kinds[d] = (type(d), tuple(sorted(
                (k, v) for k, v in vars(d).items()
                if isinstance(v, str | int | float | bool | tuple | None))))
        return (kind, *key[1:])

    def get(self, key, default=None):
        return self.cache.get(self._key(key), default)

    def __setitem__(self, key, value) -> None:
        self.cache[self._key(key)] = value

    def __len__(self) -> int:
        return len(self.cache)


_statements = SharedStatements()


def _on_connect(conn) -> None:
    """Point the engine at the shared cache once its dialect knows the server's version."""
    engine = conn.engine
    if engine._compiled_cache is not None and engine._compiled_cache is not _statements:
        engine._compiled_cache = _statements


def install() -> None:
    """Share compiled templates, URL builders and SQL between the apps of this process."""
    if not event.contains(Engine, "engine_connect", _on_connect):
        event.listen(Engine, "engine_connect", _on_connect)
    if rules.Rule._compile_builder is not _shared_builder:
        rules.Rule._compile_builder = _shared_builder
    if "bytecode_cache" not in flask.Flask.jinja_options:
        flask.Flask.jinja_options = {**flask.Flask.jinja_options,
                                     "bytecode_cache": SharedTemplates()}
