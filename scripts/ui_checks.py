"""Browser checks of the approvers' pages (/ui), run by scripts/test_ui.sh against one server.

The booking-cancellation walk: the coordinator's request comes from the API; the sales manager
approves it in the browser; the finance manager tries to reject without a comment, reads the
refusal, and rejects with one (by keyboard only); the timeline is checked; a second browser that
approves the same step from a page loaded before the first decision reads who won the race and
when. Also: the picker says authentication is out of scope, someone who may not decide gets no
form, the templates page, a phone-sized screen, and that every page answered without JavaScript.

Prints one line per check; writes "PASSED FAILED" to --counts. Exits 1 if it could not finish.
"""

import argparse
import json
import re
import sys
import urllib.request
from pathlib import Path

from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import sync_playwright

BOOKING = 4  # not the demo's sample booking (1), so both stores start the walk the same way


class Checks:
    def __init__(self, store):
        self.store = store
        self.passed = 0
        self.failed = 0

    def check(self, description, expected, actual):
        if expected == actual:
            self.passed += 1
            print(f"ok   - [{self.store}] {description}", flush=True)
        else:
            self.failed += 1
            print(
                f"FAIL - [{self.store}] {description} (expected {expected!r}, got {actual!r})",
                flush=True,
            )

    def contains(self, description, needle, haystack):
        self.check(f"{description}: says {needle!r}", True, needle in haystack)
        if needle not in haystack:
            print(f"       the text was: {haystack[:400]!r}", flush=True)


def api(base, method, path, body=None):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        base + "/api/v1/workflow" + path,
        data=data,
        method=method,
        headers={"Content-Type": "application/json"} if data else {},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.status, json.loads(response.read())


def flash(page):
    """The one-time message of the page, or '' when it has none."""
    box = page.locator(".flash")
    return box.inner_text() if box.count() else ""


def act_as(context, base, name):
    page = context.new_page()
    page.goto(base + "/ui/act-as")
    page.get_by_label(name).check()
    page.get_by_role("button", name="Act as this user").click()
    page.wait_for_load_state()
    return page


def step_item(page, step_id):
    return page.locator(f"#step-{step_id}")


def run(args, checks, browser):
    base = args.base
    shots = Path(args.screenshots)
    desktop = {"viewport": {"width": 1000, "height": 760}, "java_script_enabled": False}

    # The coordinator's request, through the API.
    status, instance = api(
        base,
        "POST",
        "/instances",
        {
            "event": "booking.cancellation_requested",
            "entity_type": "booking",
            "entity_id": BOOKING,
            "initiated_by": 3,
            "context": {"reason": "customer relocating abroad", "refund_cents": 125000},
        },
    )
    checks.check("the coordinator's request is created through the API", 201, status)
    instance_id = instance["id"]
    step1, step2 = (s["id"] for s in instance["steps"])
    instance_url = f"{base}/ui/instances/{instance_id}"

    # The sales manager: the picker, then the inbox.
    sales = browser.new_context(**desktop)
    page = sales.new_page()
    page.goto(base + "/ui")
    checks.check("/ui sends someone acting as nobody to the picker", base + "/ui/act-as", page.url)
    checks.contains("the picker", "Authentication is out of scope", page.inner_text("main"))
    page.get_by_label("Sales Manager").check()
    page.get_by_role("button", name="Act as this user").click()
    page.wait_for_load_state()
    checks.check("choosing a user leads to the inbox", base + "/ui/inbox", page.url)
    checks.contains("the inbox's message", "You now act as Sales Manager", flash(page))
    row = page.locator("tbody tr", has_text=f"booking {BOOKING}")
    checks.check("the inbox lists the new request once", 1, row.count())
    if row.count() == 1:
        cells = [c.strip() for c in row.locator("td").all_inner_texts()]
        checks.check("the inbox row's event", "booking.cancellation_requested", cells[1])
        checks.check("the inbox row's step", "1. Sales manager review", cells[2])
        checks.check(
            "the inbox row says since when",
            True,
            bool(re.match(r"\d{4}-\d\d-\d\d \d\d:\d\d UTC", cells[3])),
        )
    count = page.locator("#count").inner_text()
    checks.check("the inbox gives a count", True, bool(re.match(r"\d+ steps? waits? for you\.", count)))
    page.screenshot(path=str(shots / f"{args.store}-inbox.png"), full_page=True)

    # A second browser, also the sales manager, opens the request before anyone decides.
    rival = act_as(browser.new_context(**desktop), base, "Sales Manager")
    rival.goto(instance_url)
    checks.check(
        "the second browser sees the approve button",
        1,
        step_item(rival, step1).get_by_role("button", name="Approve").count(),
    )

    # The sales manager approves in the browser.
    row.get_by_role("link").click()
    page.wait_for_load_state()
    checks.check("the inbox links to the request", instance_url, page.url)
    step = step_item(page, step1)
    step.get_by_label("Comment").fill("Cancellation fee agreed")
    step.get_by_role("button", name="Approve").click()
    page.wait_for_load_state()
    checks.check("after the approval the browser is back on the request", instance_url, page.url)
    checks.contains("the approval's message", "You approved “Sales manager review”", flash(page))
    checks.contains("step 1", "Approved by Sales Manager at", step_item(page, step1).inner_text())
    checks.contains("step 2", "Awaiting decision", step_item(page, step2).inner_text())

    # The second browser loses the race, and is told who won and when.
    step_item(rival, step1).get_by_role("button", name="Approve").click()
    rival.wait_for_load_state()
    lost = flash(rival)
    checks.contains("the lost race", "already approved by Sales Manager at", lost)
    checks.check(
        "the lost race names the time",
        True,
        bool(re.search(r"at \d{4}-\d\d-\d\d \d\d:\d\d UTC", lost)),
    )
    checks.check("the lost race is an alert", 1, rival.locator(".flash[role=alert]").count())
    rival.screenshot(path=str(shots / f"{args.store}-lost-race.png"), full_page=True)

    # Someone who may not decide gets no form.
    coordinator = act_as(browser.new_context(**desktop), base, "Sales Coordinator")
    coordinator.goto(instance_url)
    checks.check(
        "the coordinator gets no decision form",
        0,
        coordinator.locator("form.decision").count(),
    )

    # The finance manager: a reject without a comment is refused on the server.
    finance = act_as(browser.new_context(**desktop), base, "Finance Manager")
    finance.goto(instance_url)
    step_item(finance, step2).get_by_role("button", name="Reject").click()
    finance.wait_for_load_state()
    checks.contains("the refused reject", "A comment is required to reject", flash(finance))
    checks.contains(
        "step 2 after the refused reject", "Awaiting decision", step_item(finance, step2).inner_text()
    )
    finance.screenshot(path=str(shots / f"{args.store}-comment-required.png"), full_page=True)

    # ... and rejects with one, by keyboard only: Tab to the comment, type, Tab to Reject, Enter.
    comment = step_item(finance, step2).get_by_label("Comment")
    for _ in range(60):
        finance.keyboard.press("Tab")
        if comment.evaluate("e => e === document.activeElement"):
            break
    checks.check("Tab reaches the comment", True, comment.evaluate("e => e === document.activeElement"))
    finance.keyboard.type("Refund exceeds the policy")
    finance.keyboard.press("Tab")
    finance.keyboard.press("Tab")
    focused = finance.evaluate("document.activeElement.textContent")
    checks.check("two Tabs later the Reject button has the focus", "Reject", focused)
    with finance.expect_navigation():
        finance.keyboard.press("Enter")
    checks.contains("the rejection's message", "You rejected “Finance manager approval”", flash(finance))

    # The timeline.
    main = finance.inner_text("main")
    checks.contains("the header", "Status: ✗ Rejected", main.replace("\n", " "))
    first, second = step_item(finance, step1).inner_text(), step_item(finance, step2).inner_text()
    checks.contains("step 1 of the timeline", "Approved by Sales Manager", first)
    checks.contains("step 1 of the timeline", "Cancellation fee agreed", first)
    checks.contains("step 2 of the timeline", "Rejected by Finance Manager", second)
    checks.contains("step 2 of the timeline", "Refund exceeds the policy", second)
    history = finance.locator("ol.audit li")
    actions = [t.split(" — ", 1)[-1] for t in history.all_inner_texts()]
    checks.check(
        "the history, in order",
        [
            "Request created by Sales Coordinator",
            "Step opened for decision (1. Sales manager review)",
            "Step approved (1. Sales manager review) by Sales Manager: “Cancellation fee agreed”",
            "Step opened for decision (2. Finance manager approval)",
            "Step rejected (2. Finance manager approval) by Finance Manager: “Refund exceeds the policy”",
            "Request rejected by Finance Manager",
        ],
        actions,
    )
    checks.check("every history entry has a time", history.count(), finance.locator("ol.audit time").count())
    checks.contains("the context", "customer relocating abroad", main)
    checks.check("no decision form is left", 0, finance.locator("form.decision").count())
    finance.screenshot(path=str(shots / f"{args.store}-instance.png"), full_page=True)
    _, stored = api(base, "GET", f"/instances/{instance_id}")
    checks.check("the API agrees", ["rejected", "approved", "rejected"], [stored["status"]] + [s["status"] for s in stored["steps"]])

    # The templates.
    finance.goto(base + "/ui/templates")
    templates = finance.inner_text("main")
    checks.contains("the templates page", "Booking cancellation", templates)
    checks.contains("the templates page", "Finance manager approval: role finance_manager (now: Finance Manager)", templates)
    finance.screenshot(path=str(shots / f"{args.store}-templates.png"), full_page=True)

    # A phone-sized screen: nothing wider than the screen.
    phone = browser.new_context(viewport={"width": 375, "height": 740}, java_script_enabled=False)
    small = act_as(phone, base, "Sales Manager")
    for path in ["/ui/inbox", f"/ui/instances/{instance_id}", "/ui/templates"]:
        small.goto(base + path)
        width = small.evaluate("document.documentElement.scrollWidth")
        checks.check(f"{path} fits a 375 px wide screen", True, width <= 375)
    small.goto(instance_url)
    small.screenshot(path=str(shots / f"{args.store}-phone-instance.png"), full_page=True)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--base", required=True)
    parser.add_argument("--store", required=True)
    parser.add_argument("--chromium", required=True)
    parser.add_argument("--screenshots", required=True)
    parser.add_argument("--counts", required=True)
    args = parser.parse_args()
    checks = Checks(args.store)
    finished = True
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=args.chromium, args=["--no-sandbox"])
        try:
            run(args, checks, browser)
        except (PlaywrightError, OSError, KeyError, ValueError) as error:
            checks.check(f"the walk ran to its end ({type(error).__name__}: {error})", True, False)
            finished = False
        finally:
            browser.close()
    Path(args.counts).write_text(f"{checks.passed} {checks.failed}\n")
    sys.exit(0 if finished else 1)


if __name__ == "__main__":
    main()
