"""Job kinds used only by the tests, and the worker that knows them.

Tests start it instead of the app's worker: `worker.launch(project, "test.sleep", params,
env=worker_env(), module=TEST_WORKER)` runs `python -m job_fixtures --project ... --job ...`,
which registers these kinds and then runs `ssl_core.jobs.worker.main` (the same code path)."""
import sys
import time

from ssl_core.jobs import worker


def _sleep(ctx, params):
    """Reports progress for `seconds`, checking for cancellation each tenth of a second."""
    steps = int(params.get("seconds", 1) * 10)
    for i in range(steps):
        ctx.progress(i / steps, f"step {i}")
        time.sleep(0.1)
    return {"steps": steps}


def _fail(ctx, params):
    raise RuntimeError(params.get("message", "boom"))


def _deaf(ctx, params):
    """Ignores cancel requests: the worker must stop it hard."""
    time.sleep(params.get("seconds", 60))


worker.register_kind("test.sleep", _sleep)
worker.register_kind("test.fail", _fail)
worker.register_kind("test.deaf", _deaf)

if __name__ == "__main__":
    sys.exit(worker.main())
