"""The app in a real browser: it starts on the built-in dataset and shows no exception."""
import time

from browser import chromium_page, running_app, screenshot, wait_until_idle


def test_app_starts_offline_on_digits_without_exception(tmp_path):
    with running_app(tmp_path / "home") as url, chromium_page() as page:
        t0 = time.monotonic()
        page.goto(url)
        page.get_by_role("heading", name="Images · digits").wait_for(timeout=60_000)
        page.locator("[data-testid='stImage'] img").first.wait_for(timeout=60_000)
        wait_until_idle(page)
        ready_s = time.monotonic() - t0
        screenshot(page, "01-start-digits")
        assert page.locator("[data-testid='stException']").count() == 0
        assert page.get_by_text("1,797").first.is_visible()
        assert page.locator("[data-testid='stImage'] img").count() >= 1  # the thumbnail sheet
        for title, heading in (("Jobs", "Background jobs"), ("Export", "Export")):
            page.get_by_role("link", name=title).click()
            page.get_by_role("heading", name=heading).wait_for(timeout=60_000)
            wait_until_idle(page)
            assert page.locator("[data-testid='stException']").count() == 0, title
            screenshot(page, f"01-page-{title.lower()}")
        print(f"app ready in the browser after {ready_s:.1f} s")
