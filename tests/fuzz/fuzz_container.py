"""Coverage-guided fuzzing of the container reader with atheris (on demand: `make fuzz`).

    python tests/fuzz/fuzz_container.py CORPUS_DIR -max_total_time=60

Every input must either read completely or raise an AecError; anything else
(another exception, a crash, a hang caught by -timeout) is a finding.
"""

import sys

import atheris

with atheris.instrument_imports():
    import aec
    from aec.errors import AecError


def test_one_input(data: bytes) -> None:
    for read in (aec.info, aec.verify):
        try:
            read(data)
        except AecError:
            pass


def main() -> None:
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
