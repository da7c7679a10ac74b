"""The demo page end to end: headless Debian Chromium (Playwright) against a live service on loopback."""

from __future__ import annotations

import contextlib
import json
import math
import re
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
PUT = "put_first_on_second('red block', 'blue bowl')\nsay('the red block is in the blue bowl')"
LONG = "while True:\n    wait(1)"
SESSION = re.compile(r"^session [0-9a-f]+ · ")  # not "no session"

pytestmark = [pytest.mark.browser, pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian chromium")]


@pytest.fixture(autouse=True)
def patient_expect():
    """A loaded 2-core CI machine can take longer than Playwright's 5 s default to re-render."""
    from playwright.sync_api import expect

    expect.set_options(timeout=20_000)
    yield
    expect.set_options(timeout=5_000)


@pytest.fixture
def live_url(make_service, serve):
    reply = "```python\nsay('hello from the model')\n```"
    return serve(make_service(replies=[reply], media=True))


@contextlib.contextmanager
def chromium_page(tmp_path: Path, url: str):
    """A page of a fresh headless Chromium profile, opened at `url`."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        ctx = pw.chromium.launch_persistent_context(
            str(tmp_path / "profile"), executable_path=str(CHROMIUM), headless=True, args=ARGS
        )
        try:
            page = ctx.new_page()
            page.goto(url)
            yield page
        finally:
            ctx.close()


def state_rows(page) -> dict[str, list[float]]:
    rows = page.locator("#state tr").all()
    return {
        r.get_attribute("data-name"): [float(v) for v in r.locator("td").nth(1).inner_text().split(",")]
        for r in rows
    }


def test_demo_page(live_url, tmp_path):
    from playwright.sync_api import expect

    with chromium_page(tmp_path, live_url) as page:
        expect(page.locator("#health")).to_contain_text("sandbox")
        page.fill("#objects", "red block, blue bowl")
        page.click("#new-session")
        expect(page.locator("#session-id")).to_have_text(SESSION)
        expect(page.locator("#state tr")).to_have_count(2)

        # run a program from the editor: primitive calls, speech and the final scene appear
        page.fill("#code", PUT)
        page.click("#run-code")
        expect(page.locator("#status")).to_have_text("succeeded", timeout=60_000)
        expect(page.locator("#calls li").first).to_contain_text(
            'put_first_on_second("red block", "blue bowl")'
        )
        expect(page.locator("#said li")).to_have_text(["the red block is in the blue bowl"])
        rows = state_rows(page)
        assert math.dist(rows["red block"][:2], rows["blue bowl"][:2]) < 0.05
        expect(page.locator("#video-card")).to_be_visible()
        assert page.locator("#video").get_attribute("src").endswith("/video.mp4")

        # a command (scripted model): the generated code lands in the editor
        page.fill("#command", "say hello")
        page.press("#command", "Enter")
        expect(page.locator("#status")).to_have_text("succeeded", timeout=60_000)
        expect(page.locator("#code")).to_have_value(re.compile(r"^say\('hello from the model'\)\s*$"))
        expect(page.locator("#said li")).to_have_text(["hello from the model"])
        expect(page.locator("#llm li.candidate").first).to_contain_text("candidate 0 (greedy): dry run ok")

        # skills: an export file imported into the session is listed with its signature
        export = tmp_path / "skills.json"
        export.write_text(
            json.dumps(
                {
                    "version": 1,
                    "skills": [
                        {
                            "name": "drop",
                            "code": "def drop(name):\n    put_first_on_second(name, 'blue bowl')\n",
                        }
                    ],
                }
            )
        )
        page.set_input_files("#import-skills", str(export))
        expect(page.locator("#skills summary")).to_have_text(["drop(name) (used 0×)"])

        # cancel a long program: while it goes no other run starts from the page, and the e-stop
        # stays on it while a finished run is shown
        page.fill("#code", LONG)
        page.click("#run-code")
        expect(page.locator("#calls li").first).to_contain_text("wait(1)", timeout=30_000)
        expect(page.locator("#run-code")).to_be_disabled()
        expect(page.locator("#run-command")).to_be_disabled()
        long_run = page.locator("#run-id").text_content()
        page.click("#refresh-runs")
        page.locator("#runs li", has_text="succeeded").first.click()
        expect(page.locator("#status")).to_have_text("succeeded")
        expect(page.locator("#cancel")).to_be_enabled()
        page.click("#cancel")
        page.locator("#runs li").first.click()  # the newest: the long one, followed again
        expect(page.locator("#run-id")).to_have_text(long_run)
        expect(page.locator("#status")).to_have_text("cancelled", timeout=30_000)
        expect(page.locator("#run-code")).to_be_enabled()

        # reseed: a new layout of the same objects
        before = state_rows(page)
        page.click("#reseed")
        expect(page.locator("#seed")).not_to_have_value("7")
        old_text = ", ".join(f"{v:.3f}" for v in before["blue bowl"])
        page.wait_for_function(
            "old => document.querySelector('#state td:nth-child(2)').textContent !== old", arg=old_text
        )
        assert set(state_rows(page)) == {"red block", "blue bowl"}

        # earlier runs are listed, and a click shows one's trace
        expect(page.locator("#runs li")).to_have_count(3)
        page.locator("#runs li").last.click()
        expect(page.locator("#said li")).to_have_text(["the red block is in the blue bowl"])
        expect(page.locator("#code")).to_have_value(re.compile(re.escape(PUT) + r"\s*$"))


def test_demo_page_drives_a_remote_robot(make_service, serve, robot_agent, tmp_path):
    from playwright.sync_api import expect

    agent = robot_agent()
    url = serve(make_service(robots=f"lab={agent.url}", media=True))
    with chromium_page(tmp_path, url) as page:
        expect(page.locator("#robot option")).to_have_count(2)  # sim, and lab from CAPSTAN_ROBOTS
        page.select_option("#robot", "lab")
        page.click("#new-session")
        expect(page.locator("#session-id")).to_contain_text("lab")
        expect(page.locator("#reseed")).to_be_disabled()
        page.fill("#code", PUT)
        page.click("#run-code")
        expect(page.locator("#status")).to_have_text("succeeded", timeout=60_000)
        rows = state_rows(page)
        assert math.dist(rows["red block"][:2], rows["blue bowl"][:2]) < 0.05
        held = agent.app.state.world.state()["objects"]  # the agent's own world moved
        assert math.dist(held["red block"]["position"][:2], held["blue bowl"]["position"][:2]) < 0.05
        # it was rehearsed on the robot's twin first: the rehearsal's video beside the run's
        expect(page.locator("#llm li.candidate").first).to_contain_text("dry run on the twin ok")
        expect(page.locator("#rehearsals")).to_be_visible()
        expect(page.locator("#rehearsal-list li")).to_have_count(1)
        expect(page.locator("#rehearsal-list li").first).to_contain_text("candidate 0: passed")
        assert page.locator("#rehearsal-list img").get_attribute("src").endswith("/rehearsals/0.gif")
        page.wait_for_function("document.querySelector('#rehearsal-list img').naturalWidth > 0")  # it loads
        assert page.locator("#video").get_attribute("src").endswith("/video.mp4")


def run_on_lab(page) -> None:
    """On the page: a session on robot 'lab', then PUT as a program, left awaiting approval."""
    from playwright.sync_api import expect

    page.select_option("#robot", "lab")
    page.click("#new-session")
    expect(page.locator("#session-id")).to_contain_text("lab")
    page.fill("#code", PUT)
    page.click("#run-code")
    expect(page.locator("#status")).to_have_text("awaiting_approval", timeout=60_000)


def test_demo_page_approves_and_rejects_a_program_for_a_real_robot(
    make_service, serve, robot_agent, tmp_path
):
    from playwright.sync_api import expect

    agent = robot_agent()
    url = serve(make_service(robots=f"lab={agent.url}", approval="lab=required"))
    ee = list(agent.app.state.world.ee_position())
    with chromium_page(tmp_path, url) as page:
        run_on_lab(page)
        expect(page.locator("#approval-code")).to_contain_text(
            "put_first_on_second('red block', 'blue bowl')"
        )
        expect(page.locator("#approval-dry-runs li")).to_contain_text(
            ["candidate 0 (greedy): ok"]
        )  # rehearsed on the twin
        page.click("#reject")  # no name yet: refused on the page, nothing sent
        expect(page.locator("#approval-error")).to_contain_text("enter your name")
        page.fill("#approver", "alice")
        page.fill("#approval-reason", "not now")
        page.click("#reject")
        expect(page.locator("#status")).to_have_text("failed", timeout=30_000)
        expect(page.locator("#approval-card")).to_be_hidden()
        expect(page.locator("#llm li.err", has_text="rejected by alice")).to_contain_text("not now")
        assert list(agent.app.state.world.ee_position()) == ee  # the arm never moved

        page.click("#run-code")
        expect(page.locator("#approval-card")).to_be_visible(timeout=60_000)
        expect(page.locator("#approver")).to_have_value("alice")  # remembered
        page.click("#approve")
        expect(page.locator("#status")).to_have_text("succeeded", timeout=60_000)
        held = agent.app.state.world.state()["objects"]
        assert math.dist(held["red block"]["position"][:2], held["blue bowl"]["position"][:2]) < 0.05


def test_demo_page_decides_with_an_operators_own_token(make_service, serve, robot_agent, tmp_path):
    from playwright.sync_api import expect

    from capstan.service.operators import add_operator

    token = add_operator(tmp_path / "operators.json", "bob")
    agent = robot_agent()
    url = serve(
        make_service(
            robots=f"lab={agent.url}", approval="lab=required", operators=str(tmp_path / "operators.json")
        )
    )
    with chromium_page(tmp_path, url) as page:
        run_on_lab(page)
        expect(page.locator("#approval-card")).to_be_visible()
        page.fill("#approver", "mallory")  # a name alone is refused by the service
        page.click("#approve")
        expect(page.locator("#approval-error")).to_contain_text("403")
        page.fill("#approver", "")
        page.fill("#operator-token", token)
        page.click("#approve")
        expect(page.locator("#status")).to_have_text("succeeded", timeout=60_000)
        approved = page.locator("#llm li", has_text="approved by bob")
        expect(approved).to_be_visible()
        expect(approved).not_to_contain_text("unverified")
        page.click("#clear-watchdog")  # the operator's release of the robot, signed the same way
        expect(page.locator("#llm li", has_text="clear-watchdog by bob")).to_be_visible()
        page.click("#recover")  # a PyBullet agent has no error recovery: said, not hidden
        expect(page.locator("#scene-error")).to_contain_text("has no recover")


def test_with_a_token_the_page_keeps_it_for_the_tab_and_out_of_its_links(make_service, serve, tmp_path):
    from playwright.sync_api import expect

    url = serve(make_service(media=True, api_token="s3cret-tok"))
    with chromium_page(tmp_path, url) as page:
        page.on("dialog", lambda dialog: dialog.accept("s3cret-tok"))  # the page asks on its first 401
        page.fill("#objects", "red block, blue bowl")
        page.click("#new-session")
        expect(page.locator("#session-id")).to_have_text(SESSION)
        page.fill("#code", PUT)
        page.click("#run-code")
        expect(page.locator("#status")).to_have_text("succeeded", timeout=60_000)
        expect(page.locator("#video-card")).to_be_visible()
        for link in ("#trace-link", "#gif-link"):
            assert "s3cret" not in page.locator(link).get_attribute("href"), link
        assert page.evaluate("sessionStorage.getItem('capstan-token')") == "s3cret-tok"
        assert page.evaluate("localStorage.getItem('capstan-token')") is None
        with page.context.expect_page() as opened:
            page.click("#trace-link")
        trace = opened.value
        trace.wait_for_url(re.compile(r"^blob:"))  # fetched with the token in a header, opened here
        assert '"status":"succeeded"' in trace.content().replace(" ", "")
        page.bring_to_front()
        page.click("#forget-token")
        expect(page.locator("#forget-token")).to_be_hidden()
        assert page.evaluate("sessionStorage.getItem('capstan-token')") is None


def test_a_reload_reopens_the_session_and_sessions_can_be_opened_and_deleted(live_url, tmp_path):
    from playwright.sync_api import expect

    with chromium_page(tmp_path, live_url) as page:
        page.click("#new-session")
        expect(page.locator("#session-id")).to_have_text(SESSION)
        first = page.locator("#session-id").text_content()
        page.reload()  # the same tab: the same session, not a new one
        expect(page.locator("#session-id")).to_have_text(first)
        expect(page.locator("#run-code")).to_be_enabled()
        page.click("#new-session")
        expect(page.locator("#session-id")).not_to_have_text(first)
        expect(page.locator("#session-id")).to_have_text(SESSION)
        expect(page.locator("#sessions option")).to_have_count(3)  # the prompt and the two sessions
        first_id = first.split()[1]
        page.select_option("#sessions", first_id)
        expect(page.locator("#session-id")).to_have_text(first)
        page.once("dialog", lambda dialog: dialog.accept())
        page.click("#delete-session")
        expect(page.locator("#session-id")).to_have_text("no session")
        expect(page.locator("#sessions option")).to_have_count(2)
        expect(page.locator("#run-code")).to_be_disabled()
