"""What every page must be, checked in the state a browser test has brought it to: no WCAG 2.1
AA violation that axe-core finds, and no sideways scrolling, at the desktop and phone widths.

axe-core is the npm package pinned in package.json (a dev dependency: the appliance never
serves it); `make assets` copies it to tests/e2e/vendor/. It is evaluated in the page through
the DevTools protocol, which the page's Content-Security-Policy does not apply to.
"""

from functools import cache
from pathlib import Path

import pytest
from playwright.sync_api import Page

AXE = Path(__file__).resolve().parent / "vendor" / "axe.min.js"
TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
WIDTHS = (PHONE, DESKTOP)  # the desktop last: the page is left there, as tests use it


@cache
def axe_source() -> str:
    if not AXE.exists():
        pytest.fail(f"{AXE} is missing: run `make assets` (it copies axe-core from npm).")
    return AXE.read_text()


def violations(page: Page) -> list[str]:
    """axe-core's WCAG 2.1 A/AA violations on the page as it is now, one line per element."""
    if not page.evaluate("() => typeof window.axe === 'object'"):
        page.evaluate(axe_source())
    found = page.evaluate(
        """tags => axe.run(document, {runOnly: {type: 'tag', values: tags},
                                      resultTypes: ['violations']})
                   .then(r => r.violations.map(v => v.nodes.map(n =>
                     `${v.id} (${v.impact}): ${v.help} at ${n.target.join(' ')}: `
                     + `${n.failureSummary.replace(/\\s+/g, ' ')} ${n.html.slice(0, 160)}`))
                   .flat())""",
        TAGS)
    return found


def overflow(page: Page) -> int:
    """How many pixels the page scrolls sideways (0: none)."""
    return page.evaluate(
        "() => Math.max(0, document.documentElement.scrollWidth - window.innerWidth)")


def audit(page: Page, state: str, widths=WIDTHS) -> None:
    """Check the page as it is now at each width (the viewport resized, the page not reloaded),
    and leave it at the last one. `state` names what is shown, for the failure message."""
    problems = []
    for size in widths:
        page.set_viewport_size(size)
        # Two frames: the page's resize handlers have run (app.js marks scrolling tables).
        page.evaluate("() => new Promise(done => requestAnimationFrame("
                      "() => requestAnimationFrame(done)))")
        if size["width"] <= PHONE["width"] and (extra := overflow(page)):
            wide = page.evaluate(
                """() => [...document.querySelectorAll('body *')]
                     .filter(e => e.getBoundingClientRect().right > window.innerWidth + 1)
                     .slice(0, 5).map(e => e.tagName.toLowerCase()
                       + (e.id ? '#' + e.id : '') + '.' + [...e.classList].join('.'))""")
            problems.append(f"{size['width']} px: scrolls sideways by {extra} px ({wide})")
        problems += [f"{size['width']} px: {v}" for v in violations(page)]
    twice = page.evaluate("""() => { const n = {};
        document.querySelectorAll('[id]').forEach(e => { n[e.id] = (n[e.id] || 0) + 1; });
        return Object.keys(n).filter(id => n[id] > 1); }""")
    problems += [f"the id {i!r} is on more than one element" for i in twice]
    assert not problems, f"{page.url} ({state}):\n" + "\n".join(problems)


#: The colour of links, and of buttons that read as links (app.css --brand).
LINK_COLOUR = "rgb(0, 84, 159)"


def unringed(page: Page, limit: int = 120) -> list[str]:
    """Press Tab round the whole page (focus goes on from where it is, leaves the page at its
    end and comes back at its start) until an element comes round again (at most `limit`
    presses), and return each element that showed no focus ring (a solid outline at least
    2 px wide) when the keyboard reached it."""
    missing, seen, outside = [], [], 0
    for _ in range(limit):
        page.keyboard.press("Tab")
        got = page.evaluate("""() => {
            const e = document.activeElement;
            if (!e || e === document.body) return null;
            const s = getComputedStyle(e);
            const ring = s.outlineStyle !== 'none' && parseFloat(s.outlineWidth) >= 2;
            return {ring, what: e.tagName.toLowerCase() + (e.id ? '#' + e.id : '')
                    + ' "' + (e.innerText || e.value || e.name || '').trim().slice(0, 40) + '"',
                    key: [...document.querySelectorAll('*')].indexOf(e)};
        }""")
        if got is None:  # in the browser's own controls, between the page's end and start
            outside += 1
            if outside > 3:
                break
            continue
        if got["key"] in seen:
            break
        seen.append(got["key"])
        if not got["ring"]:
            missing.append(got["what"])
    assert len(seen) > 3, "the keyboard reached almost nothing"
    return missing
