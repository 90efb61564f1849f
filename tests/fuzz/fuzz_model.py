"""Coverage-guided fuzzing of the model-file reader with atheris (on demand: `make fuzz`).

    python tests/fuzz/make_corpus.py CORPUS_DIR model
    python tests/fuzz/fuzz_model.py CORPUS_DIR -max_total_time=60 -timeout=20 -rss_limit_mb=2048

Each input is written to a file and read as a user's --model FILE is: modelguard.read_checked
(the structure checks, then the reader), first in a forked child under a time limit, as
read_untrusted does, then, if that child came to an end, here, so that the fuzzer sees the
coverage and any exception. Every input must either read or raise a ModelError; anything
else (another exception, a big allocation) is a finding.

libhdf5 itself spins or crashes on some damaged files: that is what read_untrusted's child
process contains, so such inputs are not findings here. They are kept in HDF5_FINDINGS
(to report upstream, or to test the containment with) and fuzzing goes on.
"""

import hashlib
import os
import signal
import sys
import tempfile

import atheris

with atheris.instrument_imports():
    from aec.errors import ModelError
    from aec.modelguard import read_checked

PATH = os.path.join(tempfile.mkdtemp(prefix="aec-fuzz-model-"), "model.h5")
CHILD_SECONDS = 2
HDF5_FINDINGS = os.environ.get("AEC_FUZZ_HDF5_FINDINGS", "fuzz-corpus/hdf5-findings")


def read() -> None:
    try:
        read_checked(PATH)
    except ModelError:
        pass


def ends_in_a_child() -> int:
    """0 if reading PATH comes to an end in a child process within CHILD_SECONDS, else the signal that ended it."""
    pid = os.fork()
    if pid == 0:
        # The default action of SIGALRM ends the process, even inside native code (libFuzzer had set its own).
        signal.signal(signal.SIGALRM, signal.SIG_DFL)
        signal.alarm(CHILD_SECONDS)
        try:
            read()
        except BaseException:  # noqa: BLE001 - reported when the input is read again in the fuzzer's process
            pass
        os._exit(0)
    _, status = os.waitpid(pid, 0)
    return os.WTERMSIG(status) if os.WIFSIGNALED(status) else 0


def test_one_input(data: bytes) -> None:
    with open(PATH, "wb") as f:
        f.write(data)
    killed = ends_in_a_child()
    if killed:
        os.makedirs(HDF5_FINDINGS, exist_ok=True)
        name = f"{signal.Signals(killed).name}-{hashlib.sha1(data).hexdigest()[:16]}.h5"
        with open(os.path.join(HDF5_FINDINGS, name), "wb") as f:
            f.write(data)
        return
    read()


def main() -> None:
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
