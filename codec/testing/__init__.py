"""Helpers shared by the test suite and the benchmarks: damaged containers to feed the reader, and killing
pack/unpack mid-run. Not used by aec itself."""
