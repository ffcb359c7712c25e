"""The whole JSON API with valid generated input (see fuzzing.py): no 5xx, and only the
statuses and bodies each operation's document declares."""

from schemathesis import GenerationMode

from tests.security.fuzzing import every_operation, fuzzed  # noqa: F401 (fixture)


def test_every_operation_answers_valid_input_as_documented(fuzzed):  # noqa: F811
    every_operation(fuzzed, GenerationMode.POSITIVE)
