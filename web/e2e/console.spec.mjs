// End-to-end test of the agent console in Debian's Chromium, driven by playwright-core.
//
//   node web/e2e/console.spec.mjs http://127.0.0.1:PORT OUTPUT_DIR AGENT_NAME
//
// The agent's password comes from the CONSOLE_PASSWORD environment variable. Started by
// server/tests/it/console_browser.rs against a real server. Signs in, watches the queue while a
// customer (this script, through the REST API) is transferred by the assistant, sees the
// conversation appear without a reload, opens it, checks that HTML and script the customer
// wrote are shown as text and never run, takes over with Alt+T, sends an edited suggested
// reply with Ctrl+Enter, runs refuel_data through the confirmation dialog and finds it in the
// audit log under the agent's name, hands back and sees the assistant answer again. Saves
// screenshots of the queue and the conversation view to OUTPUT_DIR. Prints one JSON line
// (`RESULT {...}`) for the Rust test; exits non-zero on any failure.

import { mkdtempSync, mkdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium } from "playwright-core";

const [baseUrl, outputDir, agentName] = process.argv.slice(2);
const password = process.env.CONSOLE_PASSWORD;
if (!baseUrl || !outputDir || !agentName || !password) {
  console.error("usage: CONSOLE_PASSWORD=... node console.spec.mjs BASE_URL OUTPUT_DIR AGENT_NAME");
  process.exit(2);
}
mkdirSync(outputDir, { recursive: true });

const TIMEOUT = 180_000;
const executablePath = process.env.CHROMIUM_PATH || "/usr/bin/chromium";
const HOSTILE = '<img src=x onerror="window.__xss=true"><script>window.__xss=true</script><b>bold?</b>';

function check(condition, message) {
  if (!condition) {
    throw new Error(message);
  }
}

function log(message) {
  console.log(`[console e2e] ${message}`);
}

/** The customer's side, through the public REST API. */
async function customerApi(method, path, body) {
  const response = await fetch(`${baseUrl}${path}`, {
    method,
    headers: { "content-type": "application/json", accept: "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const data = await response.json();
  check(response.ok, `${method} ${path}: ${response.status} ${JSON.stringify(data)}`);
  return data;
}

async function customerSays(conversationId, text) {
  const turn = await customerApi("POST", `/api/v1/conversations/${conversationId}/messages`, { text });
  log(`customer> ${text}\nassistant> ${turn.reply}`);
  return turn;
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

const userDataDir = mkdtempSync(join(tmpdir(), "switchboard-console-chromium-"));
const context = await chromium.launchPersistentContext(userDataDir, {
  executablePath,
  headless: true,
  viewport: { width: 1280, height: 800 },
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
  page.setDefaultTimeout(TIMEOUT);
  page.on("pageerror", (error) => pageErrors.push(String(error)));
  page.on("console", (message) => {
    if (message.type() === "error") {
      pageErrors.push(message.text());
    }
  });

  // 1. Without a session the console sends us to the sign-in page; a wrong password is refused.
  await page.goto(`${baseUrl}/console`);
  check(page.url().endsWith("/console/login"), `redirected to sign in: ${page.url()}`);
  await page.fill("#name", agentName);
  await page.fill("#password", "not the password");
  await page.click("button[type=submit]");
  await page.locator(".error").waitFor();
  check(page.url().endsWith("/console/login"), "a wrong password does not sign in");

  // 2. Sign in: the queue, live.
  await page.fill("#name", agentName);
  await page.fill("#password", password);
  await page.click("button[type=submit]");
  await page.waitForURL(`${baseUrl}/console`);
  await page.locator('#live-state[data-state="live"]').waitFor();
  const cookies = await context.cookies();
  const session = cookies.find((cookie) => cookie.name === "sb_console");
  check(session && session.httpOnly && session.sameSite === "Strict", `session cookie flags: ${JSON.stringify(session)}`);
  await page.evaluate(() => {
    window.__sameDocument = true;
  });
  // The refused sign-in above is logged by the browser as a failed load (401); from here on,
  // nothing may fail.
  pageErrors.length = 0;

  // 3. A customer is transferred by the assistant; the row appears without a reload.
  const { id: conversationId } = await customerApi("POST", "/api/v1/conversations", { channel: "web" });
  await customerSays(conversationId, "My data ran out, my number is 555-010-2005");
  const proven = await customerSays(conversationId, await latestCode(baseUrl, "+15550102005"));
  check(/verified/.test(proven.reply), `the texted code verifies the customer: ${JSON.stringify(proven)}`);
  const transfer = await customerSays(conversationId, "I want to talk to a human agent");
  check(transfer.handoff === true, `the assistant transferred the conversation: ${JSON.stringify(transfer)}`);
  await customerSays(conversationId, HOSTILE);
  const row = page.locator(`tbody[data-section="waiting"] tr[data-id="${conversationId}"]`);
  await row.waitFor();
  check(await page.evaluate(() => window.__sameDocument === true), "the queue updated without reloading the page");
  const rowText = await row.textContent();
  check(/Tomás H\./.test(rowText) && !/Herrera/.test(rowText), `the customer is masked in the queue: ${rowText}`);
  await page.screenshot({ path: join(outputDir, "console-queue.png") });

  // 4. Open it: the transcript shows what the customer wrote as text; nothing ran.
  await row.locator("a").click();
  await page.waitForURL(`${baseUrl}/console/conversations/${conversationId}`);
  const hostileBubble = page.locator(".msg-customer .bubble", { hasText: "<script>" });
  await hostileBubble.waitFor();
  check((await hostileBubble.textContent()).includes(HOSTILE), "the customer's HTML is shown literally");
  check((await page.locator("#transcript img, #transcript script, #transcript b").count()) === 0, "no markup from the customer in the page");
  check(await page.evaluate(() => window.__xss === undefined), "the customer's script did not run");
  check((await page.locator(".msg-assistant").count()) >= 2, "assistant replies are shown");
  await page.locator("#panel .customer-panel").waitFor();
  const panelText = await page.locator("#panel").textContent();
  check(!panelText.includes("Herrera") && panelText.includes("Tomás H."), "the customer panel is masked");
  await page.locator('#summary[data-state="model"]').waitFor();

  // 5. Take over with the keyboard.
  await page.keyboard.press("Alt+t");
  await page.waitForFunction(
    (name) => document.getElementById("holder-label").textContent === `with ${name}`,
    agentName,
  );
  check(await page.locator("#take-over").isDisabled(), "take over is done");

  // 6. Use a suggested reply, edit it, send it with Ctrl+Enter.
  const use = page.locator(".use-suggestion").first();
  await use.waitFor();
  await use.click();
  const composer = page.locator("#composer-text");
  const suggested = await composer.inputValue();
  check(suggested.length > 10, `the suggestion is in the composer: ${suggested}`);
  await composer.press("End");
  await composer.type(" I can add the data for you right now.");
  const sent = await composer.inputValue();
  await composer.press("Control+Enter");
  const agentBubble = page.locator(".msg-agent .bubble", { hasText: "I can add the data for you right now." });
  await agentBubble.waitFor();
  check((await agentBubble.textContent()) === sent, "the edited suggestion was sent as is");
  check((await composer.inputValue()) === "", "the composer is cleared after sending");
  const seen = await customerApi("GET", `/api/v1/conversations/${conversationId}`);
  check(
    seen.messages.some((message) => message.role === "agent" && message.text === sent),
    "the customer's channel has the agent's message",
  );

  // 7. A private note.
  await page.check('input[name="mode"][value="note"]');
  await composer.fill("Customer is travelling next week; offer roaming.");
  await page.click("#send");
  await page.locator(".msg-note .bubble", { hasText: "offer roaming" }).waitFor();
  await page.check('input[name="mode"][value="message"]');

  // 8. refuel_data through the confirmation dialog; the audit log shows it under the agent.
  await page.selectOption("#gb-L2005", "1");
  await page.click('button.action[data-action="refuel_data"][data-line="L2005"]');
  const dialog = page.locator("#confirm-action");
  await dialog.waitFor({ state: "visible" });
  const description = await page.locator("#confirm-text").textContent();
  check(/Add 1 GB of data to line 555-010-2005/.test(description) && /\$5\.00/.test(description), `the dialog states the change: ${description}`);
  await page.screenshot({ path: join(outputDir, "console-confirmation.png") });
  await page.click("#confirm-go");
  await dialog.waitFor({ state: "hidden" });
  const audit = page.locator('#audit-log li[data-action="refuel_data"]').first();
  await audit.waitFor();
  const auditText = await audit.textContent();
  check(auditText.includes(`agent ${agentName}`) && auditText.includes("done"), `audited under the agent: ${auditText}`);
  await page.locator(".msg-action .bubble", { hasText: "refuel_data done" }).waitFor();

  // 9. Hand back: the assistant answers the customer again.
  await page.click("#hand-back");
  await page.waitForFunction(() => document.getElementById("holder-label").textContent === "with the assistant");
  const nAssistant = await page.locator(".msg-assistant").count();
  await customerSays(conversationId, "What are the roaming rates in Canada?");
  await page.waitForFunction((n) => document.querySelectorAll(".msg-assistant").length > n, nAssistant);
  await page.locator("#transcript").evaluate((node) => {
    node.scrollTop = node.scrollHeight;
  });
  await page.screenshot({ path: join(outputDir, "console-conversation.png") });

  check(pageErrors.length === 0, `no errors in the page: ${pageErrors.join("; ")}`);
  console.log(`RESULT ${JSON.stringify({ conversation_id: conversationId, sent, description })}`);
} catch (error) {
  exitCode = 1;
  console.error(`[console e2e] FAILED: ${error && error.stack ? error.stack : error}`);
  if (pageErrors.length) {
    console.error(`[console e2e] page errors: ${pageErrors.join("; ")}`);
  }
  try {
    const page = context.pages()[0];
    if (page) {
      await page.screenshot({ path: join(outputDir, "console-failure.png") });
    }
  } catch {
    /* no screenshot */
  }
} finally {
  await context.close();
  rmSync(userDataDir, { recursive: true, force: true });
}
process.exit(exitCode);
