"""Shared steps of the browser tests, and the CLI's formatting rules written again in Python (the truth
the page's figures are checked against)."""

from __future__ import annotations

from typing import Any

GIB = 2**30
TIMEOUT_MS = 60_000


def gib(n_bytes: float) -> str:
    return f"{n_bytes / GIB:,.2f} GiB"


def gib_of(value_gib: float) -> str:
    return f"{value_gib:,.2f} GiB"


def ms(x: float) -> str:
    return f"{x:,.2f} ms" if abs(x) < 10 else f"{x:,.1f} ms"


def per_second(x: float, unit: str) -> str:
    return f"{x:,.2f} {unit}/s" if abs(x) < 100 else f"{x:,.0f} {unit}/s"


def count(n: float, singular: str) -> str:
    word = singular if n == 1 else singular + "s"
    return f"{n:,} {word}" if float(n).is_integer() else f"{n:,.1f} {word}"


def usd(x: float, per: str) -> str:
    return f"${x:,.2f} per {per}"


def goto(page: Any, url: str, view: str = "estimate") -> None:
    """Open the page on a view and wait until it has settled (the estimate view runs once on load)."""
    page.goto(f"{url}/#{view}")
    page.wait_for_selector("body[data-ready='1']", timeout=TIMEOUT_MS)
    assert page.is_visible(f"#view-{view}")


def submit(page: Any, view: str) -> None:
    """Press the view's own button and wait for its result; a shown error fails the test with its text."""
    page.click(f"#view-{view} form.view-form button[type=submit]")
    wait_done(page, view)


def wait_done(page: Any, view: str) -> None:
    page.wait_for_selector(
        f"#view-{view}[data-state=ready], #view-{view}[data-state=error]", timeout=TIMEOUT_MS
    )
    state = page.get_attribute(f"#view-{view}", "data-state")
    assert state == "ready", page.text_content(f"#{view}-error")


def cell(page: Any, selector: str) -> str:
    text = page.text_content(selector)
    assert text is not None, selector
    return text.strip()


def figure(page: Any, view: str, name: str) -> str:
    """The value cell of a figure/value table row, by the figure's name."""
    return cell(page, f"#{view}-out td[data-figure='{name}']")
