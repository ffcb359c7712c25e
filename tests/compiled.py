"""Compile once per test process what every app compiles the same way.

A test process builds hundreds of apps (see conftest.build) from the same code. Each build
compiled every Jinja template it rendered (macros.html at once, the others on first use)
and every URL rule's builder again: about 0.4 s of the 0.5 s an app cost. Both results
depend only on their input, so they are kept here and reused; the apps still get their own
Jinja environment, URL map and rules, and render and route exactly as before.

`install()` is called by conftest before any app is built. Subprocess appliances build one
app each and are left as they are.
"""

import flask
from jinja2 import BytecodeCache
from jinja2.utils import _PassArg
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


def install() -> None:
    """Share compiled templates and URL builders between the apps of this process."""
    if rules.Rule._compile_builder is not _shared_builder:
        rules.Rule._compile_builder = _shared_builder
    if "bytecode_cache" not in flask.Flask.jinja_options:
        flask.Flask.jinja_options = {**flask.Flask.jinja_options,
                                     "bytecode_cache": SharedTemplates()}
