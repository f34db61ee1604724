"""The web console in a real browser (Debian's Chromium, driven by Playwright).

Run by crates/server/tests/it/console.rs against a running `switchboard demo`,
with its exports in the environment (BASE, ALICE_TOKEN, COMPANY_KEY, CHANNEL,
BOT, INTEGRATION), CHROMIUM (the browser) and SCREENSHOTS (where the README's
pictures go). Every wait is Playwright's own (it retries until the page shows
what is expected, up to a bound): there is no sleep for readiness.
"""

import datetime
import os
import re
import sys

from playwright.sync_api import expect, sync_playwright

BASE = os.environ["BASE"]
CHANNEL = os.environ["CHANNEL"]
BOT = os.environ["BOT"]
INTEGRATION = os.environ["INTEGRATION"]
SCREENSHOTS = os.environ["SCREENSHOTS"]
TEXT = "Hello from the browser"

expect.set_options(timeout=15_000)


def step(name):
    print(f"-- {name}", flush=True)


def echo_answer(page):
    """The echo bot's answer to the message (others quote it: they are not it)."""
    text = page.locator(".text", has_text=re.compile(f"^Echo: {TEXT}$"))
    return page.locator("li.message").filter(has=text)


def fail_on_page_errors(page, errors):
    page.on("pageerror", lambda error: errors.append(str(error)))


def person_chats_with_the_echo_bot(browser, errors):
    # The console's Content-Security-Policy forbids evaluating strings as
    # scripts, which the test's own probes (wait_for_function) do.
    page = browser.new_page(viewport={"width": 1200, "height": 800}, bypass_csp=True)
    fail_on_page_errors(page, errors)

    step("a wrong token is refused with the API's message")
    page.goto(f"{BASE}/#token=wsu-v1-not-a-real-token")
    expect(page.locator(".notice.error").first).to_contain_text("not a switchboard key")
    expect(page.locator("#credential")).to_be_visible()

    step("the demo's link signs Alice in; the channel list shows the Welcome channel")
    page.goto(f"{BASE}/#token={os.environ['ALICE_TOKEN']}")
    expect(page).to_have_url(re.compile(r"#/$"))
    expect(page.locator("#who")).to_contain_text("Alice")
    link = page.locator(f"#channel-link-{CHANNEL}")
    expect(link).to_contain_text("Welcome")

    step("keyboard only: open the channel and write to the bot")
    link.focus()
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(f"#/c/{CHANNEL}$"))
    composer = page.locator("#composer-text")
    expect(composer).to_be_focused()
    # Whatever the typing line ever says is recorded as it changes.
    page.evaluate(
        """() => {
            window.typingSeen = [];
            new MutationObserver(() => {
                const line = document.querySelector('#typing');
                if (line && line.textContent) window.typingSeen.push(line.textContent);
            }).observe(document.querySelector('#app'), {subtree: true, childList: true, characterData: true});
        }"""
    )
    page.keyboard.type(TEXT)
    page.keyboard.press("Enter")

    step("the bot is seen typing, then its answer arrives live, with its buttons")
    page.wait_for_function("() => window.typingSeen.some((text) => text.includes('Echo Bot is typing'))")
    answer = echo_answer(page)
    expect(answer).to_be_visible()
    expect(answer.locator(".quote")).to_contain_text(TEXT)
    expect(answer.get_by_role("button", name="Echo again")).to_be_visible()
    expect(page.locator("#typing")).to_have_text("")

    step("pressing the bot's button sends chat:message:action; the bot answers it")
    answer.get_by_role("button", name="Echo again").focus()
    page.keyboard.press("Enter")
    expect(page.locator("li.message", has_text="You pressed “echo-again”")).to_be_visible()

    step("a reaction on the bot's answer shows at once")
    answer.get_by_label("Add a reaction").select_option("like")
    expect(answer.get_by_role("button", name="like 1")).to_have_attribute("aria-pressed", "true")
    expect(composer).to_have_value("")
    page.screenshot(path=os.path.join(SCREENSHOTS, "chat.png"))

    step("a file goes up through its presigned URL and comes down through another")
    page.set_input_files("#composer-file", files=[{"name": "notes.txt", "mimeType": "text/plain", "buffer": b"hello, file"}])
    attachment = page.get_by_role("button", name=re.compile("notes.txt"))
    expect(attachment).to_be_visible()
    with page.expect_download() as downloading:
        attachment.click()
    with open(downloading.value.path(), "rb") as downloaded:
        assert downloaded.read() == b"hello, file", "the download is the upload"

    step("a new group with the echo bot in it")
    page.get_by_role("button", name="New group").click()
    page.get_by_label("Subject").fill("Bot lab")
    page.get_by_role("checkbox", name=re.compile("Echo Bot")).check()
    page.get_by_role("button", name="Create").click()
    expect(page.locator(".main .head h1")).to_have_text("Bot lab")
    expect(page.locator(".main .head")).to_contain_text("2 members")
    page.go_back()
    expect(page).to_have_url(re.compile(f"#/c/{CHANNEL}$"))

    step("a reload keeps the place")
    page.reload()
    expect(page).to_have_url(re.compile(f"#/c/{CHANNEL}$"))
    expect(echo_answer(page)).to_be_visible()

    step("at phone width the page fits and reads")
    page.set_viewport_size({"width": 390, "height": 844})
    expect(echo_answer(page)).to_be_visible()
    assert page.evaluate("() => document.documentElement.scrollWidth <= window.innerWidth"), "wider than a phone"
    page.close()


def operator_replays_a_delivery(browser, errors):
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    fail_on_page_errors(page, errors)

    step("the operator's link opens operations with the live metrics")
    page.goto(f"{BASE}/#key={os.environ['COMPANY_KEY']}")
    expect(page).to_have_url(re.compile(r"#/ops$"))
    expect(page.locator("#metric-delivered .value")).to_have_text(re.compile(r"^\d+\.\d$"))
    expect(page.locator("#metric-backlog .value")).to_have_text(re.compile(r"^\d+$"))

    step("a new webhook integration shows its secret once")
    page.get_by_role("link", name=re.compile("Echo Bot")).click()
    page.get_by_role("button", name="New integration").click()
    page.get_by_label("Webhook URL").fill("http://127.0.0.1:9/never")
    page.get_by_role("button", name="Create").click()
    expect(page.locator("[data-secret]")).to_have_text(re.compile(r"^whsec_"))
    page.get_by_role("button", name="Done").click()
    expect(page.locator("#deliveries")).to_contain_text("Nothing delivered yet")
    page.get_by_role("button", name="Pause").click()
    expect(page.locator("#integration-state")).to_have_text("paused")
    page.get_by_role("link", name=re.compile("Echo Bot")).click()

    step("the bot, its integration, and the integration's delivery log")
    page.get_by_role("link", name=INTEGRATION).click()
    expect(page).to_have_url(re.compile(f"#/ops/{BOT}/{INTEGRATION}$"))
    action_row = page.locator("#deliveries tr[data-event-id]", has_text="chat:message:action").first
    expect(action_row).to_contain_text("delivered")
    event_id = action_row.get_attribute("data-event-id")
    rows = page.locator(f'#deliveries tr[data-event-id="{event_id}"]')
    expect(rows).to_have_count(1)

    step("replaying the event sends it again: a new delivery, delivered, with its attempt")
    action_row.get_by_role("button", name="Replay").click()
    expect(page.locator(".notice").last).to_contain_text("Queued 1 event")
    expect(rows).to_have_count(2)
    newest = rows.first
    expect(newest).to_contain_text("delivered")
    newest.get_by_role("button", name=re.compile("1")).click()
    attempt = page.locator("tr.attempt").first
    expect(attempt).to_contain_text("delivered")
    expect(attempt.locator("td").nth(2)).to_have_text(re.compile(r"^2\d\d$"))

    page.screenshot(path=os.path.join(SCREENSHOTS, "delivery-log.png"), full_page=True)

    step("replaying the last minutes queues their events again")
    # To the minute: the browser writes a datetime-local value with zero
    # seconds without them ("…T11:50"), and Playwright refuses a fill that
    # does not read back as written ("…T11:50:00").
    since = (datetime.datetime.now() - datetime.timedelta(minutes=2)).strftime("%Y-%m-%dT%H:%M")
    page.locator("#replay-since").fill(since)
    page.get_by_role("button", name="Replay range").click()
    expect(page.locator(".notice", has_text=re.compile(r"Queued [1-9]\d* events again"))).to_be_visible()
    expect(rows).to_have_count(3)

    step("dead letters: an empty state that says so")
    page.locator("#status-filter").select_option("dead")
    expect(page.locator("#deliveries")).to_contain_text("No dead letters.")
    page.locator("#status-filter").select_option("")
    expect(rows).to_have_count(3)
    page.close()


def main():
    errors = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=os.environ["CHROMIUM"],
            args=["--no-sandbox", "--disable-dev-shm-usage"],
        )
        try:
            person_chats_with_the_echo_bot(browser, errors)
            operator_replays_a_delivery(browser, errors)
        finally:
            browser.close()
    if errors:
        print("errors in the page:", *errors, sep="\n  ")
        sys.exit(1)
    print("the console works")


if __name__ == "__main__":
    main()
