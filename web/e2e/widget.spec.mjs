// End-to-end test of the chat widget in Debian's Chromium, driven by playwright-core.
//
//   node web/e2e/widget.spec.mjs http://127.0.0.1:PORT/ OUTPUT_DIR
//
// Started by server/tests/it/widget_browser.rs against a real server. Loads the demo page,
// opens the widget, asks a question and sees a streamed answer with a citation, goes through a
// data refuel answering the confirmation with the quick-reply button, checks that text is shown
// as text, reloads and finds the conversation again, and saves screenshots to OUTPUT_DIR.
// Prints one JSON line (`RESULT {...}`) for the Rust test; exits non-zero on any failure.

import { mkdtempSync, mkdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium } from "playwright-core";

const [url, outputDir] = process.argv.slice(2);
if (!url || !outputDir) {
  console.error("usage: node widget.spec.mjs URL OUTPUT_DIR");
  process.exit(2);
}
mkdirSync(outputDir, { recursive: true });

const TURN_TIMEOUT = 180_000;
const executablePath = process.env.CHROMIUM_PATH || "/usr/bin/chromium";

function check(condition, message) {
  if (!condition) {
    throw new Error(message);
  }
}

function log(message) {
  console.log(`[widget e2e] ${message}`);
}

/** The newest verification code the demo texted to `e164` (read off its outbox page, /demo/sms). */
async function latestCode(base, e164) {
  const response = await fetch(new URL("/demo/sms", base));
  const html = await response.text();
  const escaped = e164.replace("+", "\\+");
  const match = new RegExp(`class="to">${escaped}</span>[\\s\\S]*?code is (\\d{6})`).exec(html);
  if (!match) throw new Error(`no code texted to ${e164} on /demo/sms`);
  return match[1];
}

const userDataDir = mkdtempSync(join(tmpdir(), "switchboard-chromium-"));
const context = await chromium.launchPersistentContext(userDataDir, {
  executablePath,
  headless: true,
  viewport: { width: 1280, height: 860 },
  args: [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
  ],
});

const pageErrors = [];
let exitCode = 0;
try {
  const page = context.pages()[0] || (await context.newPage());
  page.setDefaultTimeout(TURN_TIMEOUT);
  page.on("pageerror", (error) => pageErrors.push(String(error)));
  page.on("console", (message) => {
    // The browser logs the requests that failed while the test had it offline (step 5).
    if (message.type() === "error" && !/ERR_INTERNET_DISCONNECTED/.test(message.text())) {
      pageErrors.push(message.text());
    }
  });

  // Playwright's CSS selectors pierce the widget's open shadow root.
  const launcher = page.locator("#switchboard-widget .launcher");
  const panel = page.locator("#switchboard-widget .panel");
  const input = page.locator("#switchboard-widget #sb-input");
  const turns = page.locator("#switchboard-widget .msg-assistant[data-seq]");
  const activeId = () =>
    page.evaluate(() => {
      const root = document.querySelector("#switchboard-widget").shadowRoot;
      const active = root.activeElement;
      return active ? active.id || active.className : null;
    });

  async function ask(text) {
    const before = await turns.count();
    await input.fill(text);
    await input.press("Enter");
    await page.waitForFunction(
      (n) => document.querySelector("#switchboard-widget").shadowRoot.querySelectorAll(".msg-assistant[data-seq]").length > n,
      before,
      { timeout: TURN_TIMEOUT },
    );
    const turn = turns.nth(before);
    const reply = await turn.locator(".bubble").textContent();
    log(`> ${text}\n< ${reply}`);
    return turn;
  }

  // 1. The demo page with the launcher; the host page's loud button style does not leak in.
  await page.goto(url);
  await launcher.waitFor();
  check((await launcher.getAttribute("aria-expanded")) === "false", "the launcher starts closed");
  const launcherBackground = await launcher.evaluate((node) => getComputedStyle(node).backgroundColor);
  check(!/255, 105, 180/.test(launcherBackground), `host styles leaked into the widget: ${launcherBackground}`);

  // 2. Open: focus goes to the message box.
  await launcher.click();
  await panel.waitFor({ state: "visible" });
  check((await activeId()) === "sb-input", "opening the widget focuses the message box");
  check((await panel.getAttribute("role")) === "dialog", "the panel is a labelled dialog");
  check((await page.locator("#switchboard-widget [aria-live]").count()) >= 1, "there is a live region");

  // 3. A knowledge question: tokens stream into the bubble, then the turn brings citations.
  const answer = await ask("How do I set up automatic payments?");
  const nTokens = Number((await answer.getAttribute("data-tokens")) || "0");
  check(nTokens > 0, "the answer was streamed token by token");
  check((await answer.getAttribute("data-streamed")) === "true", "the streamed draft became the final turn");
  const citations = answer.locator(".sources li");
  check((await citations.count()) >= 1, "the answer cites its sources");
  const citation = await citations.first().textContent();
  check(/\[1\] .+\.(md|txt|html|json|toml)/.test(citation), `a citation names a document: ${citation}`);

  // 4. A refuel for the demo customer on line 555-010-2005, confirmed with the quick reply.
  await ask("I've run out of data, can I add some?");
  await ask("555-010-2005");
  // The demo texts a code to the number on file; the customer types it from their phone.
  const proven = await ask(await latestCode(url, "+15550102005"));
  check(/verified/.test(await proven.locator(".bubble").textContent()), "the texted code verifies the customer");
  const confirmation = await ask("1 GB please");
  const yes = confirmation.locator(".choices button", { hasText: "Yes" });
  check((await yes.count()) === 1, "the confirmation offers a Yes quick reply");
  check((await confirmation.locator(".choices button", { hasText: "No" }).count()) === 1, "and a No");
  await page.screenshot({ path: join(outputDir, "widget-confirmation.png") });
  const before = await turns.count();
  await yes.click();
  await page.waitForFunction(
    (n) => document.querySelector("#switchboard-widget").shadowRoot.querySelectorAll(".msg-assistant[data-seq]").length > n,
    before,
  );
  const done = await turns.nth(before).locator(".bubble").textContent();
  log(`[Yes]\n< ${done}`);
  check(/1 GB/.test(done) && /added/i.test(done), `the refuel is done: ${done}`);
  check((await page.locator("#switchboard-widget .choices").count()) === 0, "the quick replies are gone once used");
  const customerBubbles = page.locator("#switchboard-widget .msg-customer .bubble");
  check((await customerBubbles.last().textContent()) === "Yes", "the quick reply was sent as the customer's message");

  // 5. A dropped connection: the message waits, is sent once the network is back, and the
  //    stream reconnects on its own.
  await context.setOffline(true);
  const beforeOffline = await turns.count();
  await input.fill("How do I get a new SIM card?");
  await input.press("Enter");
  await page.waitForFunction(
    () => document.querySelector("#switchboard-widget").shadowRoot.querySelector(".connection").textContent.length > 0,
  );
  log(`offline: ${await page.locator("#switchboard-widget .connection").textContent()}`);
  await page.waitForTimeout(1500);
  await context.setOffline(false);
  await page.waitForFunction(
    (n) => document.querySelector("#switchboard-widget").shadowRoot.querySelectorAll(".msg-assistant[data-seq]").length > n,
    beforeOffline,
  );
  log(`back online\n< ${await turns.nth(beforeOffline).locator(".bubble").textContent()}`);
  await page.waitForFunction(
    () => document.querySelector("#switchboard-widget").shadowRoot.querySelector(".connection").textContent === "",
  );

  // 6. Text is text: markup in a message is shown, not parsed.
  const hostile = '<img src=x onerror="window.__pwned=1"><b>bold</b>';
  await ask(hostile);
  check((await customerBubbles.last().textContent()) === hostile, "the message is shown verbatim");
  check((await page.locator("#switchboard-widget .messages img, #switchboard-widget .messages b").count()) === 0, "no markup was created");
  check((await page.evaluate(() => window.__pwned)) === undefined, "no script ran");

  await page.screenshot({ path: join(outputDir, "widget-demo.png") });
  const conversationId = await page.evaluate(() => {
    const key = Object.keys(localStorage).find((k) => k.startsWith("switchboard:"));
    return key ? localStorage.getItem(key) : null;
  });
  check(conversationId, "the conversation id is kept in local storage");
  const transcript = await page.locator("#switchboard-widget .messages .bubble").allTextContents();
  const nCustomer = await customerBubbles.count();

  // 7. Keyboard: Esc closes and gives focus back to the launcher.
  await input.press("Escape");
  await panel.waitFor({ state: "hidden" });
  check((await activeId()) === "launcher", "closing returns focus to the launcher");

  // 8. Reload: the same conversation, its transcript restored from the server.
  await page.reload();
  await launcher.click();
  await panel.waitFor({ state: "visible" });
  await page.waitForFunction(
    (n) => document.querySelector("#switchboard-widget").shadowRoot.querySelectorAll(".msg-customer").length >= n,
    nCustomer,
  );
  const restored = await page.locator("#switchboard-widget .messages .bubble").allTextContents();
  const withoutGreeting = transcript.slice(1);
  check(
    JSON.stringify(restored) === JSON.stringify(withoutGreeting),
    `the transcript survives a reload:\n${JSON.stringify(restored)}\nvs\n${JSON.stringify(withoutGreeting)}`,
  );
  const restoredCitations = await page.locator("#switchboard-widget .sources li").count();
  check(restoredCitations >= 1, "citations are restored too");
  const sameId = await page.evaluate(() => {
    const key = Object.keys(localStorage).find((k) => k.startsWith("switchboard:"));
    return localStorage.getItem(key);
  });
  check(sameId === conversationId, "the conversation id survives the reload");

  // 9. The conversation goes on after the reload (the stream reconnected).
  const after = await ask("thanks, that's all");
  check((await after.locator(".bubble").textContent()).length > 0, "the assistant answers after the reload");

  check(pageErrors.length === 0, `no errors in the page: ${pageErrors.join("; ")}`);
  console.log(`RESULT ${JSON.stringify({ conversation_id: conversationId, n_tokens: nTokens, citation, refuel: done })}`);
} catch (error) {
  exitCode = 1;
  console.error(`[widget e2e] FAILED: ${error && error.stack ? error.stack : error}`);
  if (pageErrors.length) {
    console.error(`[widget e2e] page errors: ${pageErrors.join("; ")}`);
  }
  try {
    const page = context.pages()[0];
    if (page) {
      await page.screenshot({ path: join(outputDir, "widget-failure.png") });
    }
  } catch {
    /* no screenshot */
  }
} finally {
  await context.close();
  rmSync(userDataDir, { recursive: true, force: true });
}
process.exit(exitCode);
