"""Validates configs against heartwire's config schema with the Python `jsonschema` package.

An independent check of `heartwire config schema` (tests/tests/config_schema.rs):

    python3 validate_config_schema.py SCHEMA.json INSTANCES.json

INSTANCES.json maps a name to a config (YAML already read as JSON by the test, with the
loader's YAML reader). Prints a JSON object mapping each name to the list of its errors, empty
when the config validates. Exits 2 when the schema itself is not a valid draft 2020-12 schema.
"""

import json
import sys

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError


def main() -> int:
    schema_path, instances_path = sys.argv[1:3]
    with open(schema_path, encoding="utf-8") as file:
        schema = json.load(file)
    with open(instances_path, encoding="utf-8") as file:
        instances = json.load(file)
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as error:
        print(f"the schema is not a valid draft 2020-12 schema: {error.message}", file=sys.stderr)
        return 2
    validator = Draft202012Validator(schema)
    report = {}
    for name, instance in instances.items():
        report[name] = [
            f"{'.'.join(str(part) for part in error.absolute_path) or '<root>'}: {error.message}"
            for error in validator.iter_errors(instance)
        ]
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
