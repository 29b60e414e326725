"""Checks scenario files against a JSON Schema with Python's jsonschema package: a validator
independent of volley's own code, for schema/scenario.schema.json.

    validate.py SCHEMA FILE...

Reads each FILE as TOML (tomllib) and prints one JSON line per file: {"file": FILE, "errors":
[...]}, each error "PATH: MESSAGE". Exits 0 when every file was checked, whatever it found (the
caller judges), and 1 with the reason on stderr when the schema, a file or the jsonschema package
is missing or unreadable.
"""

import json
import sys

if sys.version_info < (3, 11):
    sys.exit("validate.py: needs Python 3.11 or newer (tomllib)")

import tomllib

try:
    import jsonschema
except ImportError:
    sys.exit(
        "validate.py: the Python package jsonschema is missing; install the pinned one:\n"
        "  python3 -m venv tests/schema/.venv && "
        "tests/schema/.venv/bin/pip install -r tests/schema/requirements.txt\n"
        "(scripts/test.sh does this)"
    )


def where(error):
    """`group/0/clients`, or `(top)` for the file's top level."""
    return "/".join(str(part) for part in error.absolute_path) or "(top)"


def main(argv):
    if len(argv) < 2:
        sys.exit(__doc__)
    with open(argv[0], encoding="utf-8") as f:
        schema = json.load(f)
    checker = jsonschema.validators.validator_for(schema)
    checker.check_schema(schema)
    validator = checker(schema)
    for path in argv[1:]:
        with open(path, "rb") as f:
            try:
                document = tomllib.load(f)
            except tomllib.TOMLDecodeError as e:
                errors = [f"(toml): {e}"]
            else:
                found = sorted(validator.iter_errors(document), key=lambda e: where(e))
                errors = [f"{where(e)}: {e.message}" for e in found]
        print(json.dumps({"file": path, "errors": errors}))


if __name__ == "__main__":
    try:
        main(sys.argv[1:])
    except (OSError, json.JSONDecodeError, jsonschema.SchemaError) as e:
        sys.exit(f"validate.py: {e}")
