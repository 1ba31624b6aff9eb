"""Job kinds used only by the tests, loaded by workers through $LATENTLAB_JOB_PLUGINS."""
import time

from ssl_core.worker import register_kind


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


register_kind("test.sleep", _sleep)
register_kind("test.fail", _fail)
register_kind("test.deaf", _deaf)
