"""Benchmarks: scripts that measure the engine, the labeler and the map, beside the JSONL rows
they write (`*.jsonl` in this folder). Not part of the library: ssl_core never imports this.

    python -m benchmarks.engine ...     one engine run, one JSON line (see engine.py)
    python -m benchmarks.layout ...     the map pipeline's timings (see layout.py)
"""
